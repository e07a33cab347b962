// Copyright 2026 the wirestream authors. MIT license.
// HTTP-date (RFC 9110 §5.6.7): the preferred IMF-fixdate and the two obsolete forms that
// recipients must accept, parsed strictly (Date.parse takes almost anything).

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT$/;
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC850_DATE =
  /^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, (\d\d)-([A-Z][a-z]{2})-(\d\d) (\d\d):(\d\d):(\d\d) GMT$/;
// Sun Nov  6 08:49:37 1994
const ASCTIME_DATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})$/;

/**
 * The time of an HTTP-date in milliseconds since the epoch, or NaN when `text` is not one
 * (a day that its month lacks, an hour past 23 or a second past 60 included).
 *
 * @param now The present, for the century of an rfc850-date's two-digit year.
 */
export function parseHttpDate(text: string, now: number = Date.now()): number {
  let m = IMF_FIXDATE.exec(text);
  if (m !== null) return utc(+m[3]!, m[2]!, +m[1]!, +m[4]!, +m[5]!, +m[6]!);
  m = RFC850_DATE.exec(text);
  if (m !== null) {
    // RFC 9110 §5.6.7: a date that appears more than 50 years in the future is in the most
    // recent past year with those digits. The whole date counts, not the year alone: on
    // 2026-11-27, 31-Dec-76 is 1976 (2076-12-31 is 50 years and a month away).
    const limit = new Date(now);
    limit.setUTCFullYear(limit.getUTCFullYear() + 50);
    const ahead = (year: number) =>
      order(year, MONTHS.indexOf(m![2]!), +m![1]!, +m![4]!, +m![5]!, +m![6]!) >
        order(
          limit.getUTCFullYear(),
          limit.getUTCMonth(),
          limit.getUTCDate(),
          limit.getUTCHours(),
          limit.getUTCMinutes(),
          limit.getUTCSeconds(),
        );
    const century = limit.getUTCFullYear() - (limit.getUTCFullYear() % 100);
    let year = century + +m[3]!;
    while (ahead(year)) year -= 100;
    return utc(year, m[2]!, +m[1]!, +m[4]!, +m[5]!, +m[6]!);
  }
  m = ASCTIME_DATE.exec(text);
  if (m !== null) return utc(+m[6]!, m[1]!, +m[2]!.trim(), +m[3]!, +m[4]!, +m[5]!);
  return NaN;
}

/** A number that orders dates as their fields do (whether the day exists or not). */
function order(year: number, month: number, day: number, h: number, m: number, s: number) {
  return ((((year * 12 + month) * 31 + day) * 24 + h) * 60 + m) * 61 + s;
}

function utc(year: number, monthName: string, day: number, h: number, m: number, s: number) {
  const month = MONTHS.indexOf(monthName);
  if (month < 0 || day < 1 || h > 23 || m > 59 || s > 60) return NaN;
  // Date.UTC reads years 0 to 99 as 1900 to 1999; setUTCFullYear takes the year as it is.
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  const time = date.setUTCHours(h, m, Math.min(s, 59), 0);
  if (date.getUTCDate() !== day) return NaN; // Feb 30 rolls over into March
  return s === 60 ? time + 1000 : time; // a leap second is the one after :59
}

/** The IMF-fixdate of a time in milliseconds (its fraction of a second dropped). */
export function formatHttpDate(time: number): string {
  return new Date(time).toUTCString();
}
