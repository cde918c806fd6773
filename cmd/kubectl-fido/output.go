package main

import (
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// printObjects writes API objects as `kubectl get -o json|yaml` does: one
// object alone when single, otherwise a v1 List of them.
func printObjects(w io.Writer, format string, objs []unstructured.Unstructured, single bool) error {
	var doc map[string]any
	if single {
		doc = objs[0].Object
	} else {
		items := make([]any, 0, len(objs))
		for _, o := range objs {
			items = append(items, o.Object)
		}
		doc = map[string]any{"apiVersion": "v1", "kind": "List", "items": items, "metadata": map[string]any{"resourceVersion": ""}}
	}
	var out []byte
	var err error
	switch format {
	case "json":
		out, err = json.MarshalIndent(doc, "", "    ")
		out = append(out, '\n')
	case "yaml":
		out, err = yaml.Marshal(doc)
	default:
		err = fmt.Errorf("unknown output format %q: use json or yaml", format)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}
