package integration_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/etcdgw/etcdgw/integration"
)

// BenchmarkStart measures what a test pays for its etcd: start, first write,
// terminate, per backend and cluster size.
func BenchmarkStart(b *testing.B) {
	for _, be := range backends {
		for _, n := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s/%d", be, n), func(b *testing.B) {
				ctx := context.Background()
				for b.Loop() {
					etcd, err := integration.Start(ctx, integration.WithBackend(be), integration.WithMembers(n))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := etcd.Client().Put(ctx, "k", "v"); err != nil {
						b.Fatal(err)
					}
					if err := etcd.Terminate(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
