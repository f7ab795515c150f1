import { describe, expect, it } from "vitest";
import { isWithin, passwordProblems, splitMango, treeOrder, utcOffset } from "./rules";

describe("passwordProblems (the rule of contracts/passwords.py)", () => {
  it("accepts ten characters with a digit, an upper- and a lower-case letter", () => {
    expect(passwordProblems("Abcdefghi1")).toEqual([]);
    expect(passwordProblems("Пароль2026А")).toEqual([]);
  });
  it("names each broken rule", () => {
    expect(passwordProblems("Abcdefgh1")).toEqual(["too_short"]);
    expect(passwordProblems("abcdefghij1")).toEqual(["no_upper"]);
    expect(passwordProblems("ABCDEFGHIJ1")).toEqual(["no_lower"]);
    expect(passwordProblems("Abcdefghijk")).toEqual(["no_digit"]);
    expect(passwordProblems("")).toEqual(["too_short", "no_digit", "no_upper", "no_lower"]);
    expect(passwordProblems("Aa1" + "x".repeat(254))).toEqual(["too_long"]);
  });
  it("counts code points, not UTF-16 units", () => {
    // nine characters, one of them outside the BMP: still too short
    expect(passwordProblems("Aa1😀xxxxx")).toContain("too_short");
  });
});

describe("splitMango", () => {
  it("splits the guide's example", () => {
    expect(splitMango("user@mycompany.mangosip.ru")).toEqual({ login: "user", domain: "mycompany.mangosip.ru" });
  });
  it("tolerates a sip: prefix, spaces and upper case in the domain", () => {
    expect(splitMango("  sip:101@MangoSIP.ru ")).toEqual({ login: "101", domain: "mangosip.ru" });
  });
  it("refuses what is not user@domain", () => {
    for (const bad of ["", "user", "@mangosip.ru", "user@", "user@localhost", "a b@mangosip.ru", "u@bad_domain.ru"]) {
      expect(splitMango(bad)).toBeNull();
    }
  });
});

describe("utcOffset", () => {
  it("formats zone offsets", () => {
    const winter = new Date("2026-01-15T12:00:00Z");
    expect(utcOffset("Europe/Moscow", winter)).toBe("UTC+03:00");
    expect(utcOffset("Asia/Kolkata", winter)).toBe("UTC+05:30");
    expect(utcOffset("UTC", winter)).toBe("UTC");
    expect(utcOffset("America/New_York", winter)).toBe("UTC-05:00");
    expect(utcOffset("America/New_York", new Date("2026-07-15T12:00:00Z"))).toBe("UTC-04:00");
  });
});

describe("treeOrder and isWithin", () => {
  const items = [
    { id: "b", parent_id: "a", name: "Продажи" },
    { id: "a", parent_id: null, name: "Компания" },
    { id: "c", parent_id: "b", name: "Москва" },
    { id: "d", parent_id: "a", name: "Администраторы" },
  ];
  it("puts parents before children and siblings by name", () => {
    expect(treeOrder(items).map((n) => `${n.depth}${n.item.id}`)).toEqual(["0a", "1d", "1b", "2c"]);
  });
  it("knows a node's descendants", () => {
    expect(isWithin(items, "b", "c")).toBe(true);
    expect(isWithin(items, "b", "b")).toBe(true);
    expect(isWithin(items, "b", "d")).toBe(false);
  });
});
