// How the app replicates with the kiosk: db.js uses it, and so do the simulated phones of the
// capacity test and benchmark (tests/peers/phones.js), so they sync exactly as the app does.
// No PouchDB and no browser here: options only.

// Wait between retries while the kiosk is out of reach: from 1 s doubling to 15 s.
// Local Wi-Fi requests cost nothing, and a member walking back into range should not wait long.
export const MAX_BACKOFF_MS = 15000;

export function backOff(delay) { return Math.min(Math.max(delay * 2, 1000), MAX_BACKOFF_MS); }

/**
 * The record types someone may write to their cell (sync_server/handbook/ownership.py), or null
 * for any. The kiosk refuses the others whatever the app sends, so offering them is wasted.
 */
export function writableTypes(who) {
  if (!who || who.kioskAdmin) return null;
  return who.secretary ? ['meeting', 'minutes', 'attendance', 'feedback'] : ['attendance', 'feedback'];
}

/**
 * Options of the live pull and push of a member's databases. Batches of 100 (PouchDB's default):
 * a phone catching up makes a quarter of the round trips of batches of 25. The push offers only
 * what this member may write: everything the pull brings in (meetings, members, the others'
 * records) would otherwise go back up as a revs_diff and a checkpoint per batch, the largest
 * share of a cell meeting's requests to the kiosk (issue 14). Deletions always go (a conflict
 * resolved on the phone deletes the losing revisions, which carry no type).
 */
export function syncOptions(who) {
  const pull = { live: true, retry: true, back_off_function: backOff, batch_size: 100 };
  const types = writableTypes(who);
  const push = types ? Object.assign({}, pull, { filter: (doc) => offered(doc, who, types) }) : pull;
  return { pull, push };
}

/**
 * Whether the push offers this record. A plain member writes only their own attendance and
 * feedback, so the cell's other attendance records (one per member and meeting, the bulk of a
 * cell's history) stay down; a secretary writes any record of those types.
 */
function offered(doc, who, types) {
  if (doc._deleted === true) return true;
  if (!types.includes(doc.type)) return false;
  if (who.secretary || !who.memberId || !doc.member) return true;
  return doc.member === who.memberId;
}
