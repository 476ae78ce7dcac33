-- A collection widget's notifications (which document changes raise one, and the title), as the
-- JSON of `protocol::collection_notify::CollectionNotify`; NULL when it raises none.
ALTER TABLE widgets ADD COLUMN notify TEXT;
