import { describe, expect, it } from "vitest";
import { LANGUAGES, pickLanguage, translate } from "./i18n";

describe("i18n", () => {
  it("follows a stored choice, then the phone's languages, then English", () => {
    expect(pickLanguage("fr", ["en-US"])).toBe("fr");
    expect(pickLanguage(null, ["de-DE", "fr-FR"])).toBe("fr");
    expect(pickLanguage(null, ["ar-TN"])).toBe("ar");
    expect(pickLanguage(null, ["de-DE"])).toBe("en");
  });

  it("has every text in every language, with the same placeholders", () => {
    const keys = Object.keys(LANGUAGES.en) as (keyof typeof LANGUAGES.en)[];
    for (const lang of Object.keys(LANGUAGES) as (keyof typeof LANGUAGES)[]) {
      for (const key of keys) {
        const text = LANGUAGES[lang][key];
        expect(text, `${lang}.${key}`).toBeTruthy();
        const vars = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
        expect(vars(text), `${lang}.${key}`).toEqual(vars(LANGUAGES.en[key]));
      }
    }
    expect(translate("fr", "camerasOffline", { n: 1, total: 2 })).toBe(
      "1 caméra(s) sur 2 hors ligne : des passages peuvent manquer",
    );
  });
});
