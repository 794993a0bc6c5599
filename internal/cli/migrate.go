package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

func newMigrateCmd(g *globalOptions) *cobra.Command {
	store := chstore.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the ClickHouse schema migrations that are not yet applied",
		Long: "Creates the database and the events table and applies every pending migration,\n" +
			"recording each in <database>.schema_migrations. Safe to run again; the writer\n" +
			"and dev mode run it at start-up too.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validate(store.Validate()); err != nil {
				return err
			}
			s, err := chstore.Open(cmd.Context(), store)
			if err != nil {
				return err
			}
			defer s.Close()
			applied, err := s.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintf(g.stdout, "ClickHouse %s at %s: schema is up to date\n", s.Version(), store.Addr)
				return nil
			}
			fmt.Fprintf(g.stdout, "ClickHouse %s at %s: applied migrations %v\n", s.Version(), store.Addr, applied)
			return nil
		},
	}
	store.AddFlags(cmd.Flags())
	// This command is the migration; the flag is for the server roles.
	_ = cmd.Flags().MarkHidden("clickhouse.migrate")
	return cmd
}
