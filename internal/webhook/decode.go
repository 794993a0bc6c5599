package webhook

import (
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// decodeOptions make encoding/json/v2 read an Event as kube-apiserver's
// decoder (sigs.k8s.io/json, case-sensitive) does: member names match
// exactly, unknown members are ignored, a repeated member's last value
// wins, and invalid UTF-8 becomes U+FFFD instead of an error.
// FuzzDecodeMatchesKube holds the two to the same answers.
//
// Why not sigs.k8s.io/json itself: decoding each item was the largest
// single cost of batched ingest; the v2 decoder reads an Event in one pass,
// without v1's separate validity scan, and so costs much less
// (bench/README.md, "Webhook").
var decodeOptions = jsonv2.JoinOptions(
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

// decodeJSON decodes one item's JSON into an Event of either group.
func decodeJSON(raw []byte, into any) error {
	return jsonv2.Unmarshal(raw, into, decodeOptions)
}
