"""Git history keyed by GOID: facts from one `git log -p` stream and one `git cat-file --batch`
process, and the lineage of every function through the diffs (renames and moves included).

- `gitlog`: the log stream's arguments and its parser (commits, per-file hunks, merges).
- `blobs`: the `cat-file --batch` reader.
- `outline`: the definitions of a file version (`ast`, tree-sitter where `ast` cannot parse),
  updated through a diff by re-parsing only the regions it touched.
- `lineage`: the walk over the commits that follows each definition from version to version.
- `collect`: what the `git_history` step calls: plan (cold, new commits, rewritten history,
  shallow clone), walk, and the rows to store.
"""
