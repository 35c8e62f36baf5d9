import { useState } from "react";
import { useT, type Key } from "../i18n";

export function SignIn({ error, onSubmit }: { error?: Key; onSubmit: (token: string) => void }) {
  const t = useT();
  const [token, setTokenText] = useState("");
  return (
    <section className="page signin">
      <h1>{t("appName")}</h1>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          if (token.trim()) onSubmit(token.trim());
        }}
      >
        <h2>{t("signInTitle")}</h2>
        <p className="muted">{t("signInHelp")}</p>
        <label>
          {t("token")}
          <input
            name="token"
            type="password"
            autoComplete="current-password"
            value={token}
            onChange={(e) => setTokenText(e.target.value)}
          />
        </label>
        {error && (
          <p className="error" role="alert">
            {t(error)}
          </p>
        )}
        <button type="submit" className="primary">
          {t("signIn")}
        </button>
      </form>
    </section>
  );
}
