module github.com/etcdgw/etcdgw

go 1.25

require go.uber.org/goleak v1.3.0

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/google/uuid v1.6.0
)
