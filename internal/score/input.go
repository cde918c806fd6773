package score

import (
	"fmt"
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// The run-time types of the declared objects.
var (
	incidentType   = object(typeIncident)
	subjectType    = object(typeSubject)
	indicatorType  = object(typeIndicator)
	enrichmentType = object(typeEnrichment)
	podType        = object(typePod)
	containerType  = object(typeContainer)
	workloadType   = object(typeWorkload)
	nodeType       = object(typeNode)
	accessType     = object(typeAccess)
	exposureType   = object(typeExposure)
	namespaceType  = object(typeNamespace)
	errorType      = object(typeEnricherError)
	intelHitType   = object(typeIntelHit)
	historyType    = object(typeHistory)
	vulnsType      = object(typeVulns)
	imageVulnsType = object(typeImageVulns)
)

// input is the activation every rule of a policy is evaluated against. It is
// built once per incident; it points into the incident (which must not
// change during Evaluate) and copies only what CEL needs in another shape.
type input struct {
	incident   ref.Val
	enrichment ref.Val
	intel      ref.Val
	history    ref.Val
}

var _ interpreter.Activation = (*input)(nil)

// ResolveName implements interpreter.Activation.
func (in *input) ResolveName(name string) (any, bool) {
	switch name {
	case "incident":
		return in.incident, true
	case "enrichment":
		return in.enrichment, true
	case "intel":
		return in.intel, true
	case "history":
		return in.history, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (in *input) Parent() interpreter.Activation { return nil }

// incidentView is the incident variable: the spec plus its lists and map in
// the shapes CEL reads directly.
type incidentView struct {
	spec       *fidov1.IncidentSpec
	indicators ref.Val
	fields     map[string]string
}

// enrichmentView is the enrichment variable, with a zero value standing in
// for every part the enrichers did not provide.
type enrichmentView struct {
	pod             *podView
	workload        *fidov1.WorkloadInfo
	node            *fidov1.NodeInfo
	serviceAccount  *fidov1.AccessInfo
	exposure        *fidov1.ExposureInfo
	namespace       *fidov1.NamespaceInfo
	vulnerabilities *vulnsView
	errors          ref.Val
}

// podView is the pod with its derived image list.
type podView struct {
	pod        *fidov1.PodInfo
	images     []string
	containers ref.Val
}

// vulnsView is the vulnerability summary with its images as CEL objects.
type vulnsView struct {
	info   *fidov1.VulnerabilityInfo
	images ref.Val
}

// Shared zero values for absent parts; CEL never modifies its inputs.
var (
	noStrings     = []string{}
	noLabels      = map[string]string{}
	noObjects     = types.NewRefValList(types.DefaultTypeAdapter, []ref.Val{})
	emptyPod      = &podView{pod: &fidov1.PodInfo{}, images: noStrings, containers: noObjects}
	emptyHistory  = newObject(historyType, &fidov1.HistoryInfo{})
	emptyEnr      = &fidov1.Enrichment{}
	zeroWorkload  = &fidov1.WorkloadInfo{}
	zeroNode      = &fidov1.NodeInfo{}
	zeroAccess    = &fidov1.AccessInfo{}
	zeroExposure  = &fidov1.ExposureInfo{}
	zeroNamespace = &fidov1.NamespaceInfo{}
	emptyVulns    = &vulnsView{info: &fidov1.VulnerabilityInfo{}, images: noObjects}
)

// newInput builds the activation for one incident.
func newInput(inc *fidov1.Incident) *input {
	enr := inc.Status.Enrichment
	if enr == nil {
		enr = emptyEnr
	}
	in := &input{
		incident:   newObject(incidentType, newIncidentView(&inc.Spec)),
		enrichment: newObject(enrichmentType, newEnrichmentView(enr)),
		intel:      objectList(intelHitType, enr.Intel),
		history:    emptyHistory,
	}
	if enr.History != nil {
		in.history = newObject(historyType, enr.History)
	}
	return in
}

func newIncidentView(spec *fidov1.IncidentSpec) *incidentView {
	v := &incidentView{spec: spec, indicators: objectList(indicatorType, spec.Indicators), fields: noLabels}
	if len(spec.Fields) > 0 {
		v.fields = make(map[string]string, len(spec.Fields))
		for k, val := range spec.Fields {
			v.fields[k] = string(val)
		}
	}
	return v
}

func newEnrichmentView(enr *fidov1.Enrichment) *enrichmentView {
	return &enrichmentView{
		pod:             newPodView(enr.Pod),
		workload:        orShared(enr.Workload, zeroWorkload),
		node:            orShared(enr.Node, zeroNode),
		serviceAccount:  orShared(enr.ServiceAccount, zeroAccess),
		exposure:        orShared(enr.Exposure, zeroExposure),
		namespace:       orShared(enr.Namespace, zeroNamespace),
		vulnerabilities: newVulnsView(enr.Vulnerabilities),
		errors:          objectList(errorType, enr.Errors),
	}
}

func newVulnsView(info *fidov1.VulnerabilityInfo) *vulnsView {
	if info == nil {
		return emptyVulns
	}
	return &vulnsView{info: info, images: objectList(imageVulnsType, info.Images)}
}

func newPodView(pod *fidov1.PodInfo) *podView {
	if pod == nil {
		return emptyPod
	}
	v := &podView{pod: pod, images: noStrings, containers: objectList(containerType, pod.Containers)}
	if len(pod.Containers) > 0 {
		v.images = make([]string, len(pod.Containers))
		for i := range pod.Containers {
			v.images[i] = pod.Containers[i].Image
		}
	}
	return v
}

// orShared returns p, or the shared zero value when p is nil.
func orShared[T any](p, zero *T) *T {
	if p == nil {
		return zero
	}
	return p
}

// objectList is a CEL list of the declared objects of one type, pointing
// into the slice.
func objectList[T any](typ *types.Type, items []T) ref.Val {
	if len(items) == 0 {
		return noObjects
	}
	vals := make([]ref.Val, len(items))
	for i := range items {
		vals[i] = newObject(typ, &items[i])
	}
	return types.NewRefValList(types.DefaultTypeAdapter, vals)
}

func replicas(w *fidov1.WorkloadInfo) int64 {
	if w.Replicas == nil {
		return 0
	}
	return int64(*w.Replicas)
}

func stringsValue(s []string) []string {
	if s == nil {
		return noStrings
	}
	return s
}

func labelsValue(m map[string]string) map[string]string {
	if m == nil {
		return noLabels
	}
	return m
}

// objectVal is a declared object at run time: a pointer to the Go value
// that the schema's getters read, tagged with its CEL type.
type objectVal struct {
	typ *types.Type
	ptr any
}

func newObject(typ *types.Type, ptr any) ref.Val { return &objectVal{typ: typ, ptr: ptr} }

// ConvertToNative implements ref.Val; objects stay inside CEL.
func (o *objectVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("%s cannot be converted to %v", o.typ.TypeName(), t)
}

// ConvertToType implements ref.Val; an object converts only to its type.
func (o *objectVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return o.typ
	}
	if t.TypeName() == o.typ.TypeName() {
		return o
	}
	return types.NewErr("type conversion error from %s to %s", o.typ.TypeName(), t.TypeName())
}

// Equal implements ref.Val: objects of the same type are equal when their
// contents are.
func (o *objectVal) Equal(other ref.Val) ref.Val {
	b, ok := other.(*objectVal)
	if !ok || b.typ.TypeName() != o.typ.TypeName() {
		return types.False
	}
	return types.Bool(reflect.DeepEqual(o.ptr, b.ptr))
}

// Type implements ref.Val.
func (o *objectVal) Type() ref.Type { return o.typ }

// Value implements ref.Val; the getters read this value.
func (o *objectVal) Value() any { return o.ptr }

// fieldGetters index the schema's getters by type and field name, for
// dynamic field access (dyn(x).field), which bypasses the checked getters.
var fieldGetters = func() map[string]map[string]ref.FieldGetter {
	out := make(map[string]map[string]ref.FieldGetter, len(schema))
	for _, d := range schema {
		out[d.name] = make(map[string]ref.FieldGetter, len(d.fields))
		for _, f := range d.fields {
			out[d.name][f.name] = f.get
		}
	}
	return out
}()

// Get implements traits.Indexer for dynamic field access.
func (o *objectVal) Get(index ref.Val) ref.Val {
	name, ok := index.(types.String)
	if !ok {
		return types.NewErr("no such field %v in %s", index, o.typ.TypeName())
	}
	get, ok := fieldGetters[o.typ.TypeName()][string(name)]
	if !ok {
		return types.NewErr("no such field %s in %s", name, o.typ.TypeName())
	}
	v, err := get(o.ptr)
	if err != nil {
		return types.WrapErr(err)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// IsSet implements traits.FieldTester: every declared field is present.
func (o *objectVal) IsSet(field ref.Val) ref.Val {
	name, ok := field.(types.String)
	if !ok {
		return types.False
	}
	_, found := fieldGetters[o.typ.TypeName()][string(name)]
	return types.Bool(found)
}

// stringsOrNone is s, or the shared empty list when s is nil.
func stringsOrNone(s []string) []string {
	if s == nil {
		return noStrings
	}
	return s
}
