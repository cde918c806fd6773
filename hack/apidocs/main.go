// Command apidocs writes docs/api.md, the field reference of the FIDO
// kinds, from the generated CRDs, so the reference never drifts from
// what the API server validates.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: apidocs CRD_DIR OUTPUT.md")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(dir, out string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var b strings.Builder
	b.WriteString("# API reference\n\nGenerated from `config/crd/bases` by `make docs`; do not edit. `kubectl explain <kind>.<field>` shows the same text.\n")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		writeKind(&b, &crd)
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

func writeKind(b *strings.Builder, crd *apiextensionsv1.CustomResourceDefinition) {
	v := crd.Spec.Versions[0]
	fmt.Fprintf(b, "\n## %s\n\n`%s/%s`, %s, short names `%s`, categories `%s`.\n\n%s\n\n",
		crd.Spec.Names.Kind, crd.Spec.Group, v.Name, strings.ToLower(string(crd.Spec.Scope)),
		strings.Join(crd.Spec.Names.ShortNames, "`, `"), strings.Join(crd.Spec.Names.Categories, "`, `"),
		oneLine(v.Schema.OpenAPIV3Schema.Description))
	b.WriteString("| field | type | description |\n| --- | --- | --- |\n")
	props := v.Schema.OpenAPIV3Schema.Properties
	for _, top := range []string{"spec", "status"} {
		if s, ok := props[top]; ok {
			writeFields(b, top, &s)
		}
	}
}

func writeFields(b *strings.Builder, path string, s *apiextensionsv1.JSONSchemaProps) {
	fmt.Fprintf(b, "| `%s` | %s | %s |\n", path, typeOf(s), describe(s))
	if s.Items != nil && s.Items.Schema != nil && s.Items.Schema.Type == "object" && len(s.Items.Schema.Properties) > 0 {
		s = s.Items.Schema
		path += "[]"
	}
	if path == "status.conditions[]" {
		return
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		child := s.Properties[n]
		writeFields(b, path+"."+n, &child)
	}
}

func typeOf(s *apiextensionsv1.JSONSchemaProps) string {
	switch {
	case s.Type == "array" && s.Items != nil && s.Items.Schema != nil:
		return "[]" + s.Items.Schema.Type
	case s.Type == "object" && s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
		return "map[string]" + s.AdditionalProperties.Schema.Type
	case s.Type == "" && s.XIntOrString:
		return "int-or-string"
	}
	return s.Type
}

// describe is the field's doc plus the validation a person must satisfy.
func describe(s *apiextensionsv1.JSONSchemaProps) string {
	parts := []string{oneLine(s.Description)}
	if len(s.Enum) > 0 {
		var vals []string
		for _, e := range s.Enum {
			vals = append(vals, strings.Trim(string(e.Raw), `"`))
		}
		parts = append(parts, "One of: "+strings.Join(vals, ", ")+".")
	}
	if s.Default != nil {
		parts = append(parts, "Default: `"+string(s.Default.Raw)+"`.")
	}
	if s.Minimum != nil || s.Maximum != nil {
		parts = append(parts, fmt.Sprintf("Range: %s to %s.", bound(s.Minimum), bound(s.Maximum)))
	}
	if s.MaxLength != nil {
		parts = append(parts, fmt.Sprintf("At most %d characters.", *s.MaxLength))
	}
	if s.MaxItems != nil {
		parts = append(parts, fmt.Sprintf("At most %d items.", *s.MaxItems))
	}
	for _, r := range s.XValidations {
		parts = append(parts, "Rule: "+r.Message+".")
	}
	return strings.ReplaceAll(strings.Join(parts, " "), "|", "\\|")
}

func bound(f *float64) string {
	if f == nil {
		return "any"
	}
	return fmt.Sprint(*f)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
