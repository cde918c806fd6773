package score

import (
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Limits applied to every rule expression.
const (
	// MaxExpressionLength is the longest expression accepted, in characters.
	MaxExpressionLength = 4096
	// MaxExpressionDepth bounds the nesting of an expression's syntax tree.
	MaxExpressionDepth = 32
	// MaxCost is the highest CEL cost a rule may have: its worst-case cost
	// estimated at compile time, and its actual cost per evaluation.
	MaxCost = 1_000_000
	// MaxPolicyCost bounds the sum of a policy's rule costs estimated at
	// compile time: what scoring one incident may cost at worst, however
	// many rules share it.
	MaxPolicyCost = 2 * MaxCost
	// CheapCost is the estimated worst-case cost up to which a rule runs
	// without the run-time cost tracker, which would cost more than the rule.
	// Such a rule cannot loop over two collections that the API leaves
	// unbounded (the estimator assumes 256 entries for those, so any nested
	// loop over them estimates above CheapCost), so it is at most linear in
	// its input, which the API server bounds. Every other rule is stopped at
	// MaxCost during evaluation.
	CheapCost = 5_000
	// maxListRange bounds lists.range(n).
	maxListRange = 1024
)

// Names of the declared object types. They only exist for the type checker:
// at run time the values are plain Go maps and lists.
const (
	typeIncident      = "fido.Incident"
	typeSubject       = "fido.Subject"
	typeIndicator     = "fido.Indicator"
	typeEnrichment    = "fido.Enrichment"
	typePod           = "fido.Pod"
	typeContainer     = "fido.Container"
	typeWorkload      = "fido.Workload"
	typeNode          = "fido.Node"
	typeAccess        = "fido.ServiceAccount"
	typeExposure      = "fido.Exposure"
	typeNamespace     = "fido.Namespace"
	typeEnricherError = "fido.EnricherError"
	typeIntelHit      = "fido.IntelHit"
	typeHistory       = "fido.History"
	typeVulns         = "fido.Vulnerabilities"
	typeImageVulns    = "fido.ImageVulnerabilities"
)

var (
	stringList = types.NewListType(types.StringType)
	stringMap  = types.NewMapType(types.StringType, types.StringType)
)

// objectDecl declares one object type: its fields, their CEL types and how
// to read them from the Go value that stands for the object at run time.
type objectDecl struct {
	name   string
	fields []fieldDecl
}

// fieldDecl is one field of an object type.
type fieldDecl struct {
	name string
	typ  *types.Type
	get  ref.FieldGetter
}

func object(name string) *types.Type { return types.NewObjectType(name) }

func listOf(name string) *types.Type { return types.NewListType(object(name)) }

// field declares a field of the objects represented by *T at run time.
func field[T any](name string, typ *types.Type, get func(*T) any) fieldDecl {
	return fieldDecl{name: name, typ: typ, get: func(target any) (any, error) {
		v, ok := target.(*T)
		if !ok {
			return nil, fmt.Errorf("field %s: unexpected value %T", name, target)
		}
		return get(v), nil
	}}
}

// schema is the shape of the rule variables, and how each field is read
// from the views newInput builds. Every field always has a value.
var schema = []objectDecl{
	{typeIncident, []fieldDecl{
		field("detector", types.StringType, func(v *incidentView) any { return v.spec.Detector }),
		field("rule", types.StringType, func(v *incidentView) any { return v.spec.Rule }),
		field("priority", types.StringType, func(v *incidentView) any { return string(v.spec.Priority) }),
		field("priorityRank", types.IntType, func(v *incidentView) any { return int64(v.spec.Priority.Rank()) }),
		field("summary", types.StringType, func(v *incidentView) any { return v.spec.Summary }),
		field("subject", object(typeSubject), func(v *incidentView) any { return newObject(subjectType, &v.spec.Subject) }),
		field("indicators", listOf(typeIndicator), func(v *incidentView) any { return v.indicators }),
		field("fields", stringMap, func(v *incidentView) any { return v.fields }),
	}},
	{typeSubject, []fieldDecl{
		field("kind", types.StringType, func(s *fidov1.Subject) any { return string(s.Kind) }),
		field("namespace", types.StringType, func(s *fidov1.Subject) any { return s.Namespace }),
		field("name", types.StringType, func(s *fidov1.Subject) any { return s.Name }),
		field("container", types.StringType, func(s *fidov1.Subject) any { return s.Container }),
		field("node", types.StringType, func(s *fidov1.Subject) any { return s.Node }),
		field("user", types.StringType, func(s *fidov1.Subject) any { return s.User }),
		field("ip", types.StringType, func(s *fidov1.Subject) any { return s.IP }),
		field("groups", stringList, func(s *fidov1.Subject) any { return stringsOrNone(s.Groups) }),
	}},
	{typeIndicator, []fieldDecl{
		field("type", types.StringType, func(i *fidov1.Indicator) any { return string(i.Type) }),
		field("value", types.StringType, func(i *fidov1.Indicator) any { return i.Value }),
	}},
	{typeEnrichment, []fieldDecl{
		field("pod", object(typePod), func(v *enrichmentView) any { return newObject(podType, v.pod) }),
		field("workload", object(typeWorkload), func(v *enrichmentView) any { return newObject(workloadType, v.workload) }),
		field("node", object(typeNode), func(v *enrichmentView) any { return newObject(nodeType, v.node) }),
		field("serviceAccount", object(typeAccess), func(v *enrichmentView) any { return newObject(accessType, v.serviceAccount) }),
		field("exposure", object(typeExposure), func(v *enrichmentView) any { return newObject(exposureType, v.exposure) }),
		field("namespace", object(typeNamespace), func(v *enrichmentView) any { return newObject(namespaceType, v.namespace) }),
		field("vulnerabilities", object(typeVulns), func(v *enrichmentView) any { return newObject(vulnsType, v.vulnerabilities) }),
		field("errors", listOf(typeEnricherError), func(v *enrichmentView) any { return v.errors }),
	}},
	{typePod, []fieldDecl{
		field("name", types.StringType, func(v *podView) any { return v.pod.Name }),
		field("node", types.StringType, func(v *podView) any { return v.pod.Node }),
		field("serviceAccount", types.StringType, func(v *podView) any { return v.pod.ServiceAccount }),
		field("phase", types.StringType, func(v *podView) any { return v.pod.Phase }),
		field("privileged", types.BoolType, func(v *podView) any { return v.pod.Privileged }),
		field("hostNetwork", types.BoolType, func(v *podView) any { return v.pod.HostNetwork }),
		field("hostPID", types.BoolType, func(v *podView) any { return v.pod.HostPID }),
		field("hostPath", types.BoolType, func(v *podView) any { return v.pod.HostPath }),
		field("runAsRoot", types.BoolType, func(v *podView) any { return v.pod.RunAsRoot }),
		field("labels", stringMap, func(v *podView) any { return labelsValue(v.pod.Labels) }),
		field("images", stringList, func(v *podView) any { return v.images }),
		field("containers", listOf(typeContainer), func(v *podView) any { return v.containers }),
	}},
	{typeContainer, []fieldDecl{
		field("name", types.StringType, func(c *fidov1.ContainerInfo) any { return c.Name }),
		field("image", types.StringType, func(c *fidov1.ContainerInfo) any { return c.Image }),
		field("imageID", types.StringType, func(c *fidov1.ContainerInfo) any { return c.ImageID }),
		field("privileged", types.BoolType, func(c *fidov1.ContainerInfo) any { return c.Privileged }),
		field("runAsRoot", types.BoolType, func(c *fidov1.ContainerInfo) any { return c.RunAsRoot }),
	}},
	{typeWorkload, []fieldDecl{
		field("kind", types.StringType, func(w *fidov1.WorkloadInfo) any { return w.Kind }),
		field("name", types.StringType, func(w *fidov1.WorkloadInfo) any { return w.Name }),
		field("replicas", types.IntType, func(w *fidov1.WorkloadInfo) any { return replicas(w) }),
	}},
	{typeNode, []fieldDecl{
		field("name", types.StringType, func(n *fidov1.NodeInfo) any { return n.Name }),
		field("roles", stringList, func(n *fidov1.NodeInfo) any { return stringsValue(n.Roles) }),
		field("labels", stringMap, func(n *fidov1.NodeInfo) any { return labelsValue(n.Labels) }),
		field("unschedulable", types.BoolType, func(n *fidov1.NodeInfo) any { return n.Unschedulable }),
	}},
	{typeAccess, []fieldDecl{
		field("subject", types.StringType, func(a *fidov1.AccessInfo) any { return a.Subject }),
		field("bindings", stringList, func(a *fidov1.AccessInfo) any { return stringsValue(a.Bindings) }),
		field("clusterAdmin", types.BoolType, func(a *fidov1.AccessInfo) any { return a.ClusterAdmin }),
		field("readSecrets", types.BoolType, func(a *fidov1.AccessInfo) any { return a.ReadSecrets }),
		field("execPods", types.BoolType, func(a *fidov1.AccessInfo) any { return a.ExecPods }),
		field("createWorkloads", types.BoolType, func(a *fidov1.AccessInfo) any { return a.CreateWorkloads }),
		field("escalate", types.BoolType, func(a *fidov1.AccessInfo) any { return a.Escalate }),
	}},
	{typeExposure, []fieldDecl{
		field("services", stringList, func(e *fidov1.ExposureInfo) any { return stringsValue(e.Services) }),
		field("ingresses", stringList, func(e *fidov1.ExposureInfo) any { return stringsValue(e.Ingresses) }),
		field("publicLoadBalancer", types.BoolType, func(e *fidov1.ExposureInfo) any { return e.PublicLoadBalancer }),
		field("nodePort", types.BoolType, func(e *fidov1.ExposureInfo) any { return e.NodePort }),
		field("ingress", types.BoolType, func(e *fidov1.ExposureInfo) any { return e.Ingress }),
	}},
	{typeNamespace, []fieldDecl{
		field("name", types.StringType, func(n *fidov1.NamespaceInfo) any { return n.Name }),
		field("labels", stringMap, func(n *fidov1.NamespaceInfo) any { return labelsValue(n.Labels) }),
	}},
	{typeVulns, []fieldDecl{
		field("critical", types.IntType, func(v *vulnsView) any { return int64(v.info.Critical) }),
		field("high", types.IntType, func(v *vulnsView) any { return int64(v.info.High) }),
		field("medium", types.IntType, func(v *vulnsView) any { return int64(v.info.Medium) }),
		field("low", types.IntType, func(v *vulnsView) any { return int64(v.info.Low) }),
		field("unknown", types.IntType, func(v *vulnsView) any { return int64(v.info.Unknown) }),
		field("fixable", types.IntType, func(v *vulnsView) any { return int64(v.info.Fixable) }),
		field("criticalIDs", stringList, func(v *vulnsView) any { return stringsValue(v.info.CriticalIDs) }),
		field("reportAge", types.DurationType, func(v *vulnsView) any { return v.info.ReportAge.Duration }),
		field("scanned", types.BoolType, func(v *vulnsView) any { return len(v.info.Images) > 0 }),
		field("images", listOf(typeImageVulns), func(v *vulnsView) any { return v.images }),
	}},
	{typeImageVulns, []fieldDecl{
		field("container", types.StringType, func(i *fidov1.ImageVulnerabilities) any { return i.Container }),
		field("image", types.StringType, func(i *fidov1.ImageVulnerabilities) any { return i.Image }),
		field("critical", types.IntType, func(i *fidov1.ImageVulnerabilities) any { return int64(i.Critical) }),
		field("high", types.IntType, func(i *fidov1.ImageVulnerabilities) any { return int64(i.High) }),
		field("medium", types.IntType, func(i *fidov1.ImageVulnerabilities) any { return int64(i.Medium) }),
		field("low", types.IntType, func(i *fidov1.ImageVulnerabilities) any { return int64(i.Low) }),
		field("unknown", types.IntType, func(i *fidov1.ImageVulnerabilities) any { return int64(i.Unknown) }),
		field("fixable", types.IntType, func(i *fidov1.ImageVulnerabilities) any { return int64(i.Fixable) }),
	}},
	{typeEnricherError, []fieldDecl{
		field("enricher", types.StringType, func(e *fidov1.EnricherError) any { return e.Enricher }),
		field("message", types.StringType, func(e *fidov1.EnricherError) any { return e.Message }),
	}},
	{typeIntelHit, []fieldDecl{
		field("type", types.StringType, func(h *fidov1.IntelHit) any { return string(h.Type) }),
		field("value", types.StringType, func(h *fidov1.IntelHit) any { return h.Value }),
		field("matched", types.StringType, func(h *fidov1.IntelHit) any { return h.Matched }),
		field("feed", types.StringType, func(h *fidov1.IntelHit) any { return h.Feed }),
		field("confidence", types.IntType, func(h *fidov1.IntelHit) any { return int64(h.Confidence) }),
		field("severity", types.StringType, func(h *fidov1.IntelHit) any { return string(h.Severity) }),
		field("tags", stringList, func(h *fidov1.IntelHit) any { return stringsValue(h.Tags) }),
	}},
	{typeHistory, []fieldDecl{
		field("subjectIncidents", types.IntType, func(h *fidov1.HistoryInfo) any { return int64(h.SubjectIncidents) }),
		field("workloadIncidents", types.IntType, func(h *fidov1.HistoryInfo) any { return int64(h.WorkloadIncidents) }),
	}},
}

// variables are the top-level names a rule can use, with their types.
var variables = []fieldDecl{
	{name: "incident", typ: object(typeIncident)},
	{name: "enrichment", typ: object(typeEnrichment)},
	{name: "intel", typ: listOf(typeIntelHit)},
	{name: "history", typ: object(typeHistory)},
}

// schemaProvider adds the declared object types to CEL's own type provider.
// The interpreter reads fields with the declared getters, straight from the
// Go values, so no map is built per incident.
type schemaProvider struct {
	types.Provider
	objects map[string]*declaredObject
}

// declaredObject is an object type prepared for lookups.
type declaredObject struct {
	typ    *types.Type
	names  []string
	fields map[string]*types.FieldType
}

func newSchemaProvider(base types.Provider) *schemaProvider {
	p := &schemaProvider{Provider: base, objects: make(map[string]*declaredObject, len(schema))}
	for _, decl := range schema {
		obj := &declaredObject{typ: object(decl.name), fields: make(map[string]*types.FieldType, len(decl.fields))}
		for _, f := range decl.fields {
			obj.names = append(obj.names, f.name)
			obj.fields[f.name] = &types.FieldType{Type: f.typ, IsSet: alwaysSet, GetFrom: f.get}
		}
		p.objects[decl.name] = obj
	}
	return p
}

// alwaysSet reports every declared field as present: absent data reads as
// its zero value, so has() is true for every declared field.
func alwaysSet(any) bool { return true }

// FindStructType implements types.Provider.
func (p *schemaProvider) FindStructType(name string) (*types.Type, bool) {
	if obj, ok := p.objects[name]; ok {
		return types.NewTypeTypeWithParam(obj.typ), true
	}
	return p.Provider.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p *schemaProvider) FindStructFieldNames(name string) ([]string, bool) {
	if obj, ok := p.objects[name]; ok {
		return append([]string(nil), obj.names...), true
	}
	return p.Provider.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider.
func (p *schemaProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if obj, ok := p.objects[name]; ok {
		ft, found := obj.fields[field]
		return ft, found
	}
	return p.Provider.FindStructFieldType(name, field)
}

// NewValue implements types.Provider. The declared objects are read-only
// views of an incident; expressions cannot construct them.
func (p *schemaProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.objects[name]; ok {
		return types.NewErr("%s values cannot be constructed in an expression", name)
	}
	return p.Provider.NewValue(name, fields)
}

// environment returns the shared CEL environment, built once.
var environment = sync.OnceValues(newEnvironment)

// newEnvironment builds the CEL environment every rule is compiled in.
func newEnvironment() (*cel.Env, error) {
	base, err := cel.NewEnv(
		cel.ParserExpressionSizeLimit(MaxExpressionLength),
		cel.ParserRecursionLimit(MaxExpressionDepth),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.OptionalTypes(),
		cel.EagerlyValidateDeclarations(true),
		ext.Strings(),
		ext.Sets(),
		ext.Lists(ext.ListsMaxRangeSize(maxListRange)),
		ext.TwoVarComprehensions(),
		ext.Network(),
	)
	if err != nil {
		return nil, fmt.Errorf("building the base CEL environment: %w", err)
	}
	opts := []cel.EnvOption{cel.CustomTypeProvider(newSchemaProvider(base.CELTypeProvider()))}
	for _, v := range variables {
		opts = append(opts, cel.Variable(v.name, v.typ))
	}
	env, err := base.Extend(opts...)
	if err != nil {
		return nil, fmt.Errorf("declaring the rule variables: %w", err)
	}
	return env, nil
}

// Bounds the cost estimator assumes for the inputs. They follow the API's
// validation where it has one (64 indicators, 64 fields of 1024 characters,
// 64 intel hits) and generous sizes elsewhere.
const (
	defaultListSize   = 256
	defaultStringSize = 1024
	maxInputString    = 4096
	maxObjectFields   = 16
)

// listSizes are the most elements the estimator assumes, by field name,
// for the lists and maps whose size the API validates; the others, such
// as labels, roles, tags or containers, are assumed to hold defaultListSize.
var listSizes = map[string]uint64{
	"indicators":  64,
	"fields":      64,
	"intel":       64,
	"errors":      16,
	"criticalIDs": fidov1.MaxCriticalIDs,
}

// stringSizes are the longest strings the estimator assumes, by field name.
var stringSizes = map[string]uint64{
	"summary":  4096,
	"value":    2048,
	"matched":  2048,
	"rule":     256,
	"@keys":    317,
	"detector": 63,
	"priority": 13,
	"kind":     63,
	"type":     16,
	"severity": 8,
	"labels":   63,
	"tags":     63,
}

// sizeEstimator tells the CEL cost estimator how large the inputs can be,
// so that the worst case of a rule is finite and can be bounded. Values
// CEL cannot trace to an input field (an optional's orValue, say) are
// assumed to be as large as the largest input of their kind. The estimate
// is a guard against obviously explosive rules at compile time; the
// run-time cost limit is what actually bounds an evaluation.
type sizeEstimator struct{}

// EstimateSize implements checker.CostEstimator.
func (sizeEstimator) EstimateSize(node checker.AstNode) *checker.SizeEstimate {
	path := node.Path()
	switch node.Type().Kind() {
	case types.StringKind, types.BytesKind:
		if len(path) == 0 {
			return &checker.SizeEstimate{Min: 0, Max: maxInputString}
		}
		return &checker.SizeEstimate{Min: 0, Max: lookupSize(stringSizes, lastName(path), defaultStringSize)}
	case types.ListKind, types.MapKind:
		return &checker.SizeEstimate{Min: 0, Max: lookupSize(listSizes, lastName(path), defaultListSize)}
	case types.StructKind:
		// Comparing two declared objects visits their fields.
		return &checker.SizeEstimate{Min: 1, Max: maxObjectFields}
	case types.OpaqueKind:
		// ip and cidr values compare in constant time.
		return &checker.SizeEstimate{Min: 1, Max: 1}
	}
	return nil
}

// EstimateCallCost implements checker.CostEstimator; the defaults apply.
func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// lastName is the last field name of a path, skipping the @items/@values
// steps into list elements and map values (but not @keys).
func lastName(path []string) string {
	for i := len(path) - 1; i >= 0; i-- {
		switch path[i] {
		case "@items", "@values", "@indices":
			continue
		}
		return path[i]
	}
	return ""
}

func lookupSize(table map[string]uint64, name string, fallback uint64) uint64 {
	if n, ok := table[name]; ok {
		return n
	}
	return fallback
}
