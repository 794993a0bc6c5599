package apiserverbench

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/eventpipe/eventpipe/bench/internal/load"
)

var contentTypeFlag = flag.String("apibench.content-type", "protobuf",
	"what the load client, the preload and the watchers send and accept: protobuf (as kubelet and controllers) or json")

func contentType(b *testing.B) string {
	switch *contentTypeFlag {
	case "protobuf":
		return load.ContentProtobuf
	case "json":
		return load.ContentJSON
	}
	b.Fatalf("-apibench.content-type=%q: want protobuf or json", *contentTypeFlag)
	return ""
}

// parseInts reads a comma-separated list of positive integers.
func parseInts(b *testing.B, name, s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n <= 0 {
			b.Fatalf("-%s=%q: want positive integers separated by commas", name, s)
		}
		out = append(out, n)
	}
	return out
}
