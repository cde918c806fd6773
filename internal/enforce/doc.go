// Package enforce carries out ResponseActions: one driver per action type
// (IsolatePod, DisableServiceAccount, DisableUser, ScaleWorkload,
// CordonNode, DeletePod, Label, Notify) behind a small Plan / Exec / Revert
// interface, and the Guard that every action passes through first
// (protected namespaces, the operator's own objects, global dry run and the
// blast-radius rate limit).
//
// A driver first plans: it reads the cluster and lists the exact changes it
// would make, each with the value before and after. A dry run stops there
// and records the plan as Would* changes. Otherwise the plan is executed;
// execution is idempotent (deterministic names, create-or-get, patches with
// optimistic locking), so an action interrupted by a crash can be driven
// again without doubling anything. What was recorded is enough to revert
// it, and reverting restores a value only while it is still the one the
// action set.
package enforce
