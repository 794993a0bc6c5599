package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/eventpipe/eventpipe/internal/version"
)

func newVersionCmd(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of this build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			switch output {
			case "":
				fmt.Fprintln(g.stdout, info.String())
			case "json":
				b, _ := json.MarshalIndent(info, "", "  ")
				fmt.Fprintln(g.stdout, string(b))
			default:
				return fmt.Errorf("--output %q: allowed: json, or empty for one line", output)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: empty for one line, or json")
	return cmd
}
