-- 0019: full-text recall in each message's own language (persona/memory/lexemes.py).
-- `memories.tsv` was computed by PostgreSQL with the English configuration. DROP EXPRESSION
-- turns it into an ordinary column that keeps every row's value and rewrites nothing (a
-- momentary lock; the GIN index stays as it is). persona fills it from now on — each
-- message's words under its language's configuration, and the whole memory's words as they
-- are (`simple`) — and re-indexes older rows a batch at a time (`languages` NULL: not yet),
-- each batch its own short transaction. Until a row is re-indexed its English lexemes
-- still match: a question's lexemes are ORed under each candidate configuration.
ALTER TABLE memories ALTER COLUMN tsv DROP EXPRESSION;
ALTER TABLE memories ADD COLUMN languages text[];
-- Concatenates tsvectors (positions shifted, as `||` does): one memory's messages in their several languages.
CREATE AGGREGATE tsvector_agg(tsvector) (SFUNC = tsvector_concat, STYPE = tsvector, INITCOND = '');
