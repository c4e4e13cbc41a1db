-- The words of the search index, so that a prefix can be searched for as the words it stands
-- for ("recog" as "recognise" OR "recognition"): FTS5 walks each word's matches newest first
-- and stops at the page, where a prefix makes it gather every match of every such word first
-- (50 ms for a word in most stories at a million). Reloads add the words of what they index
-- (bot.store.sqlite.search_terms); a word whose last story went stays until the next rebuild,
-- costing a search one empty lookup, never a wrong result.
CREATE TABLE search_terms (term TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE VIRTUAL TABLE temp.newsbot_index_words USING fts5vocab(main, stories_fts, row);

INSERT INTO search_terms (term) SELECT term FROM temp.newsbot_index_words;

DROP TABLE temp.newsbot_index_words;
