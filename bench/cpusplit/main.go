// Command cpusplit splits a CPU profile of an in-process API-server
// benchmark (bench/apiserver's -apibench.cpuprofile) into the parts
// bench/README.md reports: the load client, what k8s.io/apiserver and
// HTTP/2 cost, JetStream, eventpipe's own code, the garbage collector.
//
//	go run ./bench/cpusplit [-per N] PROFILE
//
// Each sample goes to the first part, in the order printed, with a function
// anywhere in its stack that the part names; so a JetStream call made from
// the create handler counts as JetStream, not as the handler. -per N adds
// microseconds per unit (N creates, or deliveries) to each line.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"time"

	"github.com/google/pprof/profile"
)

// parts are matched in this order against every function of a sample's
// stack.
var parts = []struct {
	name string
	re   *regexp.Regexp
}{
	{"load client", regexp.MustCompile(`eventpipe/bench/|watch\.\(\*StreamWatcher\)|http2\.\(\*ClientConn\)|http2\.\(\*clientStream\)|http2\.\(\*clientConnReadLoop\)|http2\.\(\*Transport\)`)},
	{"managedFields", regexp.MustCompile(`managedfields`)},
	{"JetStream: nats-server", regexp.MustCompile(`nats-io/nats-server`)},
	{"JetStream: nats.go", regexp.MustCompile(`nats-io/nats(\.|%2e)go`)},
	{"eventpipe: writer and ClickHouse client", regexp.MustCompile(`eventpipe/internal/writer|ClickHouse/|eventpipe/internal/store/clickhouse`)},
	{"eventpipe: registry", regexp.MustCompile(`eventpipe/internal/registry`)},
	{"eventpipe: event log (hub, records)", regexp.MustCompile(`eventpipe/internal/eventlog`)},
	{"response encoding", regexp.MustCompile(`handlers\.transformResponseObject|responsewriters\.WriteObjectNegotiated`)},
	{"request decoding", regexp.MustCompile(`handlers\.limitedReadBody|runtime\.Decode|serializer.*\.Decode`)},
	{"rest of the create handler", regexp.MustCompile(`handlers\.CreateResource`)},
	{"k8s.io/apiserver filters and routing", regexp.MustCompile(`k8s\.io/apiserver/`)},
	{"server HTTP/2 and TLS", regexp.MustCompile(`http2\.\(\*serverConn\)|http2\.\(\*Server\)|net/http\.\(\*conn\)`)},
	{"garbage collection", regexp.MustCompile(`runtime\.gcBgMarkWorker|runtime\.bgsweep|runtime\.bgscavenge`)},
}

func main() {
	per := flag.Float64("per", 0, "units (creates, deliveries) the profile covers; adds µs per unit")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: cpusplit [-per N] PROFILE")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p, err := profile.Parse(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cpu := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			cpu = i
		}
	}
	if cpu < 0 {
		fmt.Fprintln(os.Stderr, "not a CPU profile (no cpu/nanoseconds sample type)")
		os.Exit(1)
	}
	sums := map[string]time.Duration{}
	var total time.Duration
	for _, s := range p.Sample {
		v := time.Duration(s.Value[cpu])
		total += v
		sums[partOf(s)] += v
	}
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return sums[names[i]] > sums[names[j]] })
	for _, n := range names {
		line := fmt.Sprintf("%7.2fs %5.1f%%", sums[n].Seconds(), 100*float64(sums[n])/float64(total))
		if *per > 0 {
			line += fmt.Sprintf(" %7.1f µs", float64(sums[n].Microseconds())/(*per))
		}
		fmt.Println(line + "  " + n)
	}
	line := fmt.Sprintf("%7.2fs total", total.Seconds())
	if *per > 0 {
		line += fmt.Sprintf(", %.1f µs per unit", float64(total.Microseconds())/(*per))
	}
	fmt.Println(line)
}

// partOf names the first part with a function in s's stack, or "other".
func partOf(s *profile.Sample) string {
	for _, part := range parts {
		for _, loc := range s.Location {
			for _, ln := range loc.Line {
				if ln.Function != nil && part.re.MatchString(ln.Function.Name) {
					return part.name
				}
			}
		}
	}
	return "other"
}
