package apiserverbench

import (
	"flag"
	"fmt"

	"github.com/eventpipe/eventpipe/bench/internal/load"
)

var createClient = flag.String("apibench.create-client", "raw",
	"how creates are sent: raw (the request client-go sends, through client-go's transport, answer read but not decoded) or client-go (client-go's typed client, answer decoded)")

// newCreators returns n creators of s, each with its own connection, of
// the kind -apibench.create-client names.
func newCreators(s *server, n int, contentType string) ([]load.Creator, error) {
	out := make([]load.Creator, n)
	for i := range out {
		switch *createClient {
		case "raw":
			c, err := load.NewRawCreator(s.config, contentType)
			if err != nil {
				return nil, err
			}
			out[i] = c
		case "client-go":
			cs, err := newClient(s, contentType)
			if err != nil {
				return nil, err
			}
			out[i] = load.ClientGoCreator{CS: cs}
		default:
			return nil, fmt.Errorf("-apibench.create-client=%q: want raw or client-go", *createClient)
		}
	}
	return out, nil
}
