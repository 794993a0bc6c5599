package eventquery

import (
	"time"

	"github.com/eventpipe/eventpipe/internal/timerange"
)

func parses(s string) bool {
	_, err := timerange.Parse(s, time.Now())
	return err == nil
}
