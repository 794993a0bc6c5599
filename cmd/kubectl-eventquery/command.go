package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/eventpipe/eventpipe/internal/kubeevents/conversion"
	"github.com/eventpipe/eventpipe/internal/kubeevents/table"
	"github.com/eventpipe/eventpipe/internal/timerange"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

type options struct {
	kubeconfig, context   string
	namespace             string
	allNamespaces         bool
	since, start, end     string
	fieldSelector, output string
	limit                 int32
	all, noHeaders        bool
}

func newCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "kubectl-eventquery",
		Short: "Search stored Kubernetes event history (EventQuery)",
		Long: `Search stored event history, up to your tier's query window (60 days by default),
and print it the way "kubectl get events" does. Newest events come first.

Examples:
  kubectl eventquery --since 7d --field-selector type=Warning -n prod
  kubectl eventquery -A --since 2h --field-selector 'reason in (BackOff,FailedMount)' --all
  kubectl eventquery --start 2026-02-11T00:00:00Z --end 2026-02-18T00:00:00Z -o yaml`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&o.context, "context", "", "kubeconfig context to use")
	f.StringVarP(&o.namespace, "namespace", "n", "", "namespace to search (default: the context's namespace)")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "search every namespace you may read")
	f.StringVar(&o.since, "since", "1h", "how far back to search, a number and a unit s, m, h, d or w (e.g. 30m, 7d); ignored with --start")
	f.StringVar(&o.start, "start", "", `window start: RFC 3339 or relative ("now-2h"); overrides --since`)
	f.StringVar(&o.end, "end", "now", `window end (exclusive): RFC 3339 or relative`)
	f.StringVar(&o.fieldSelector, "field-selector", "", "filter, e.g. type=Warning or 'reason in (BackOff,FailedMount)'")
	f.StringVarP(&o.output, "output", "o", "", "output format: empty (table), wide, yaml or json")
	f.Int32Var(&o.limit, "limit", 100, "events per page (1-1000); without --all only the first page is printed")
	f.BoolVar(&o.all, "all", false, "follow continue tokens and print every page")
	f.BoolVar(&o.noHeaders, "no-headers", false, "do not print the table header")
	return cmd
}

func (o *options) run(ctx context.Context, stdout, stderr io.Writer) error {
	switch o.output {
	case "", "wide", "yaml", "json":
	default:
		return fmt.Errorf("--output %q: use wide, yaml or json (or nothing for a table)", o.output)
	}
	start := o.start
	if start == "" {
		if _, err := timerange.ParseDuration(o.since); err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		start = "now-" + o.since
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: o.kubeconfig, Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence},
		&clientcmd.ConfigOverrides{CurrentContext: o.context})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return err
	}
	ns := ""
	if !o.allNamespaces {
		ns = o.namespace
		if ns == "" {
			if ns, _, err = loader.Namespace(); err != nil {
				return err
			}
		}
	}
	cfg.APIPath = "/apis"
	cfg.GroupVersion = &v1alpha1.SchemeGroupVersion
	cfg.NegotiatedSerializer = jsonSerializer()
	client, err := rest.RESTClientFor(cfg)
	if err != nil {
		return err
	}
	q := &v1alpha1.EventQuery{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "EventQuery"},
		ObjectMeta: metav1.ObjectMeta{Name: "kubectl-eventquery"},
		Spec: v1alpha1.EventQuerySpec{StartTime: start, EndTime: o.end, Namespace: ns, FieldSelector: o.fieldSelector,
			Limit: o.limit},
	}
	var events []eventsv1.Event
	for {
		body, err := json.Marshal(q)
		if err != nil {
			return err
		}
		raw, err := client.Post().Resource("eventqueries").Body(body).SetHeader("Content-Type", "application/json").DoRaw(ctx)
		if err != nil {
			return explain(err, raw)
		}
		var ans v1alpha1.EventQuery
		if err := json.Unmarshal(raw, &ans); err != nil {
			return fmt.Errorf("read the answer: %w", err)
		}
		events = append(events, ans.Status.Results...)
		if ans.Status.Continue == "" {
			break
		}
		if !o.all {
			fmt.Fprintln(stderr, "more events match; use --all to print every page, or a larger --limit")
			break
		}
		q.Spec.Continue = ans.Status.Continue
	}
	return o.print(stdout, stderr, events)
}

// explain turns an API error body into its Status message.
func explain(err error, raw []byte) error {
	var st metav1.Status
	if json.Unmarshal(raw, &st) == nil && st.Kind == "Status" && st.Message != "" {
		return &apierrors.StatusError{ErrStatus: st}
	}
	return err
}

func (o *options) print(stdout, stderr io.Writer, events []eventsv1.Event) error {
	switch o.output {
	case "yaml", "json":
		list := eventsv1.EventList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}, Items: events}
		for i := range list.Items {
			list.Items[i].APIVersion, list.Items[i].Kind = eventsv1.SchemeGroupVersion.String(), "Event"
		}
		b, err := json.MarshalIndent(list, "", "    ")
		if err != nil {
			return err
		}
		if o.output == "yaml" {
			if b, err = yaml.JSONToYAML(b); err != nil {
				return err
			}
		}
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	if len(events) == 0 {
		if o.allNamespaces || o.namespace == "" {
			fmt.Fprintln(stderr, "No events found.")
		} else {
			fmt.Fprintf(stderr, "No events found in %s namespace.\n", o.namespace)
		}
		return nil
	}
	wide := o.output == "wide"
	w := tabwriter.NewWriter(stdout, 6, 4, 3, ' ', 0)
	cols := table.ColumnDefinitions()
	if !o.noHeaders {
		var hdr []string
		if o.allNamespaces {
			hdr = append(hdr, "NAMESPACE")
		}
		for _, c := range cols {
			if c.Priority == 0 || wide {
				hdr = append(hdr, strings.ToUpper(c.Name))
			}
		}
		fmt.Fprintln(w, strings.Join(hdr, "\t"))
	}
	now := time.Now()
	for i := range events {
		ev := conversion.FromEventsV1(&events[i])
		cells := table.Cells(ev, now)
		var row []string
		if o.allNamespaces {
			row = append(row, ev.Namespace)
		}
		for j, c := range cols {
			if c.Priority == 0 || wide {
				row = append(row, fmt.Sprint(cells[j]))
			}
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	return w.Flush()
}
