-- A widget's thresholds (warning and critical bounds, see `protocol::thresholds`), as the JSON of a
-- list of `Threshold`; NULL when it has none.
ALTER TABLE widgets ADD COLUMN thresholds TEXT;
