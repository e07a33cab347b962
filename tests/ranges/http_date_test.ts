// Copyright 2026 the wirestream authors. MIT license.
// The private helpers of the conditional requests: HTTP-dates and entity-tag lists.
import assert from "node:assert/strict";
import { formatHttpDate, parseHttpDate } from "../../lib/ranges/_http_date.ts";
import { parseEntityTags, strongMatch, weakMatch } from "../../lib/ranges/_entity_tag.ts";

// The example of RFC 9110 §5.6.7 in its three forms.
const SUNDAY = Date.UTC(1994, 10, 6, 8, 49, 37);

Deno.test("parseHttpDate", async (t) => {
  await t.step("reads IMF-fixdate and the two obsolete forms (RFC 9110 §5.6.7)", () => {
    assert.equal(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), SUNDAY);
    assert.equal(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), SUNDAY);
    assert.equal(parseHttpDate("Sun Nov  6 08:49:37 1994"), SUNDAY);
    assert.equal(parseHttpDate("Sun Nov 16 08:49:37 1994"), SUNDAY + 10 * 86_400_000);
    assert.equal(parseHttpDate(formatHttpDate(SUNDAY + 999)), SUNDAY); // ms dropped
    assert.equal(parseHttpDate("Wed, 31 Dec 2008 23:59:60 GMT"), Date.UTC(2009, 0, 1)); // leap second
  });

  await t.step("reads the years 0000 to 0099 as they are, not as 1900 to 1999", () => {
    const year = (y: number) => {
      const date = new Date(0);
      date.setUTCFullYear(y, 0, 1);
      return date.getTime();
    };
    assert.equal(parseHttpDate("Sat, 01 Jan 0000 00:00:00 GMT"), year(0));
    assert.equal(parseHttpDate("Fri, 01 Jan 0099 00:00:00 GMT"), year(99));
    assert.equal(parseHttpDate("Mon Jan  1 00:00:00 0001"), year(1));
    assert.equal(new Date(parseHttpDate("Sat, 01 Jan 0000 00:00:00 GMT")).getUTCFullYear(), 0);
    assert.equal(parseHttpDate("Thu, 01 Jan 0100 00:00:00 GMT"), year(100));
    // Feb 29 of year 4 exists; of year 0100 it does not (and of 1900 neither).
    assert.ok(!Number.isNaN(parseHttpDate("Sat, 29 Feb 0004 00:00:00 GMT")));
    assert.ok(Number.isNaN(parseHttpDate("Sat, 29 Feb 0100 00:00:00 GMT")));
  });

  await t.step("puts a two-digit year within 50 years from now", () => {
    const year = new Date().getUTCFullYear();
    const at = (yy: number) =>
      new Date(parseHttpDate(`Sunday, 06-Nov-${String(yy).padStart(2, "0")} 08:49:37 GMT`))
        .getUTCFullYear();
    assert.equal(at((year + 10) % 100), year + 10);
    assert.equal(at((year + 60) % 100), year + 60 - 100);
  });

  await t.step("reads a date more than 50 years ahead, to the second, as a past one", () => {
    // RFC 9110 §5.6.7: "a timestamp value ... more than 50 years in the future" is in the most
    // recent past year with those digits. The whole date counts, not its year alone.
    const now = Date.UTC(2026, 10, 27, 12, 0, 0);
    const parsed = (text: string, at = now) => new Date(parseHttpDate(text, at)).toISOString();
    assert.equal(parsed("Thursday, 31-Dec-76 23:59:59 GMT"), "1976-12-31T23:59:59.000Z");
    assert.equal(parsed("Friday, 27-Nov-76 12:00:00 GMT"), "2076-11-27T12:00:00.000Z"); // 50
    assert.equal(parsed("Friday, 27-Nov-76 12:00:01 GMT"), "1976-11-27T12:00:01.000Z");
    assert.equal(parsed("Sunday, 06-Nov-94 08:49:37 GMT"), "1994-11-06T08:49:37.000Z");
    assert.equal(parsed("Thursday, 06-Nov-36 08:49:37 GMT"), "2036-11-06T08:49:37.000Z");
    // Near the end of a century the window reaches into the next one, both ways.
    const late = Date.UTC(2080, 0, 1);
    assert.equal(parsed("Monday, 01-Jan-20 00:00:00 GMT", late), "2120-01-01T00:00:00.000Z");
    assert.equal(parsed("Monday, 01-Jan-40 00:00:00 GMT", late), "2040-01-01T00:00:00.000Z");
    const early = Date.UTC(2010, 0, 1);
    assert.equal(parsed("Monday, 01-Jan-99 00:00:00 GMT", early), "1999-01-01T00:00:00.000Z");
  });

  await t.step("refuses what is not an HTTP-date", () => {
    for (
      const text of [
        "",
        "2024-03-01T12:34:56Z",
        "Sun, 06 Nov 1994 08:49:37 UTC", // GMT only
        "Sun, 6 Nov 1994 08:49:37 GMT", // two-digit day
        "sun, 06 Nov 1994 08:49:37 GMT", // case-sensitive
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT", // no such day
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT x",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994", // asctime pads the day with a space
        "1994",
      ]
    ) assert.ok(Number.isNaN(parseHttpDate(text)), text);
  });
});

Deno.test("parseEntityTags", async (t) => {
  await t.step("reads lists of strong and weak tags, commas inside tags included", () => {
    assert.equal(parseEntityTags("*"), "*");
    assert.equal(parseEntityTags(" * "), "*");
    assert.deepEqual(parseEntityTags('"a"'), ['"a"']);
    assert.deepEqual(parseEntityTags('"a", W/"b" ,"c,d"'), ['"a"', 'W/"b"', '"c,d"']);
    assert.deepEqual(parseEntityTags(', ,"a",,'), ['"a"']); // empty members
    assert.deepEqual(parseEntityTags('""'), ['""']);
    assert.deepEqual(parseEntityTags(""), []);
  });

  await t.step("refuses what is not a list of entity-tags", () => {
    for (const value of ["a", '"a', '"a" "b"', 'w/"a"', '"a"b', '*, "a"', '"a\u0001"', '"a""b"']) {
      assert.equal(parseEntityTags(value), null, value);
    }
  });

  await t.step("compares strongly and weakly (RFC 9110 §8.8.3.2)", () => {
    // The table of §8.8.3.2.
    const table: [string, string, boolean, boolean][] = [
      ['W/"1"', 'W/"1"', false, true],
      ['W/"1"', 'W/"2"', false, false],
      ['W/"1"', '"1"', false, true],
      ['"1"', '"1"', true, true],
    ];
    for (const [a, b, strong, weak] of table) {
      assert.equal(strongMatch(a, b), strong, `${a} ${b}`);
      assert.equal(weakMatch(a, b), weak, `${a} ${b}`);
    }
    assert.equal(strongMatch('"1"', undefined), false);
    assert.equal(weakMatch('"1"', undefined), false);
  });

  await t.step("long runs of spaces are read in linear time", () => {
    const began = performance.now();
    assert.equal(parseEntityTags(`"a"${" ".repeat(64_000)}x`), null);
    assert.equal(parseEntityTags(`${" ".repeat(64_000)}x`), null);
    assert.deepEqual(parseEntityTags(`"a"${" ".repeat(64_000)}, "b"`), ['"a"', '"b"']);
    const took = performance.now() - began;
    assert.ok(took < 1000, `took ${took.toFixed(0)} ms (backtracking takes seconds)`);
  });
});
