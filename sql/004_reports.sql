-- Daily reports (metrica.jobs.reports): one per store and business day, rendered once by one worker and
-- re-rendered only on an admin's request (version + 1). Kept when raw events expire.
CREATE TABLE IF NOT EXISTS daily_reports (
    store_id        integer NOT NULL,
    business_date   date NOT NULL,
    version         integer NOT NULL DEFAULT 1,      -- 1, then + 1 per regeneration
    generated_at    timestamptz NOT NULL DEFAULT now(),
    data            jsonb NOT NULL,                  -- the figures the renderings are made from
    html            text NOT NULL,
    csv             text NOT NULL,
    pdf             bytea NOT NULL,
    PRIMARY KEY (store_id, business_date)
);
