package chserver_test

import (
	"testing"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
)

func TestMain(m *testing.M) {
	chtest.VerifyTestMain(m)
}
