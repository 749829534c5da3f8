package gateway

// rpc describes one gateway call: its path under the API prefix, and whether
// applying it twice has the same effect as applying it once. Only idempotent
// calls are sent again after they may have reached a server; the others end with
// ErrOutcomeUnknown instead.
type rpc struct {
	path       string
	idempotent bool
}

var (
	rpcRange        = rpc{"kv/range", true}
	rpcPut          = rpc{"kv/put", false}
	rpcDelete       = rpc{"kv/deleterange", false}
	rpcTxn          = rpc{"kv/txn", false}
	rpcTxnReadOnly  = rpc{"kv/txn", true}
	rpcCompact      = rpc{"kv/compaction", false}
	rpcGrant        = rpc{"lease/grant", false}
	rpcRevoke       = rpc{"lease/revoke", false}
	rpcTimeToLive   = rpc{"lease/timetolive", true}
	rpcLeases       = rpc{"lease/leases", true}
	rpcKeepAlive    = rpc{"lease/keepalive", true} // renewing twice is renewing
	rpcWatch        = rpc{"watch", true}
	rpcMemberList   = rpc{"cluster/member/list", true}
	rpcMemberAdd    = rpc{"cluster/member/add", false}
	rpcMemberRemove = rpc{"cluster/member/remove", false}
	rpcMemberUpdate = rpc{"cluster/member/update", false}
	rpcMemberPromo  = rpc{"cluster/member/promote", false}
	rpcStatus       = rpc{"maintenance/status", true}
	rpcAlarm        = rpc{"maintenance/alarm", true}
	rpcDefragment   = rpc{"maintenance/defragment", true}
	rpcHashKV       = rpc{"maintenance/hashkv", true}
	rpcMoveLeader   = rpc{"maintenance/transfer-leadership", false}
	rpcAuthenticate = rpc{"auth/authenticate", true}
	rpcAuthEnable   = rpc{"auth/enable", false}
	rpcAuthDisable  = rpc{"auth/disable", false}
	rpcAuthStatus   = rpc{"auth/status", true}
	rpcUserAdd      = rpc{"auth/user/add", false}
	rpcUserDelete   = rpc{"auth/user/delete", false}
	rpcUserGrant    = rpc{"auth/user/grant", false}
	rpcUserRevoke   = rpc{"auth/user/revoke", false}
	rpcUserPassword = rpc{"auth/user/changepw", false}
	rpcRoleAdd      = rpc{"auth/role/add", false}
	rpcRoleDelete   = rpc{"auth/role/delete", false}
	rpcRoleGrant    = rpc{"auth/role/grant", false}
	rpcRoleRevoke   = rpc{"auth/role/revoke", false}
)

// readOnly reports whether a transaction only reads, so that it may be retried.
func (o *Op) readOnly() bool {
	switch o.kind {
	case opGet:
		return true
	case opTxn:
		for i := range o.then {
			if !o.then[i].readOnly() {
				return false
			}
		}
		for i := range o.els {
			if !o.els[i].readOnly() {
				return false
			}
		}
		return true
	}
	return false
}
