import { describe, expect, it } from "vitest";
import { addDays, businessDate, monthRange, percentChange, weekdayIndex } from "./times";

describe("store-local dates", () => {
  it("counts the hours before day_start_hour as the previous business day, in the store's zone", () => {
    const store = { timezone: "Africa/Tunis", day_start_hour: 6 }; // UTC+1
    expect(businessDate(store, new Date("2026-11-24T04:30:00Z"))).toBe("2026-11-23"); // 05:30 local
    expect(businessDate(store, new Date("2026-11-24T05:00:00Z"))).toBe("2026-11-24"); // 06:00 local
    // 23:30 UTC is already the next calendar day in Tokyo.
    expect(businessDate({ timezone: "Asia/Tokyo", day_start_hour: 0 }, new Date("2026-11-24T23:30:00Z"))).toBe(
      "2026-11-25",
    );
  });

  it("steps days across months and DST changes, and knows Monday", () => {
    expect(addDays("2026-03-01", -1)).toBe("2026-02-28");
    expect(addDays("2026-03-29", 1)).toBe("2026-03-30");
    expect(addDays("2026-12-31", 1)).toBe("2027-01-01");
    expect(weekdayIndex("2026-11-23")).toBe(0);
    expect(weekdayIndex("2026-11-29")).toBe(6);
    expect(monthRange("2026-12")).toEqual(["2026-12-01", "2027-01-01"]);
  });

  it("gives a signed percentage, none against zero", () => {
    expect(percentChange(12, 10)).toBe("+20%");
    expect(percentChange(5, 10)).toBe("-50%");
    expect(percentChange(5, 0)).toBeNull();
  });
});
