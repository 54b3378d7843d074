"""cst_ingest: comments (pragmas, task tags), def headers and name sites from tree-sitter.

`extract_cst` turns one file's bytes into the rows of core.comments, core.def_headers and
core.name_sites; the per-file machinery (codeintel/ingestion/filework.py) runs it in workers.
"""
