// Which reports of a refreshed flight board just arrived, by what the server
// knows: a report arrived if this page never listed it and the server
// received it no earlier than the `arrivalsAfter` time its previous look gave
// (that look's time, less the longest a report can take from its receipt to
// the store). An old report that comes back onto the page (reopened on a
// flight that landed long ago, or moved onto this page as the order shifts)
// is listed, not announced. Times are the store's RFC 3339 UTC text, which
// sorts as text; the browser's clock is never asked.

/**
 * @param {{id: string, received: string}[]} rows the refreshed page's reports
 * @param {Set<string>} listed ids this page listed before
 * @param {string} after the previous look's `arrivals_after`
 * @returns {string[]} the ids that just arrived, in page order
 */
export function arrivedIds(rows, listed, after) {
  return rows
    .filter((row) => !listed.has(row.id))
    // Without a time to go by, a report is counted as arrived: a false
    // alarm costs less than a missed alert.
    .filter((row) => !after || !row.received || row.received >= after)
    .map((row) => row.id);
}
