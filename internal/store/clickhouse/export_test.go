package clickhouse

// FoldingRows gives the external tests (package clickhouse_test) the rows
// both halves of the version matrix fold.
var FoldingRows = foldingRows
