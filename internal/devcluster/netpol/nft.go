package netpol

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"slices"
	"sort"
	"strings"
)

// Table is the nftables table the enforcer owns (family inet).
const Table = "fido_netpol"

// Render writes the ruleset as one nft script that replaces the table
// atomically: the kernel applies the whole script or none of it.
//
// Each isolated pod has a chain per direction that returns for what is
// allowed and drops the rest. The forward hook sees pod-to-pod traffic on
// the bridge (br_netfilter) and traffic leaving the node; the input hook
// sees a pod's traffic to the node itself. The node's own traffic to its
// pods (output hook) is never filtered.
func Render(rs Ruleset) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\ntable inet %s {\n", Table, Table, Table)
	egress, ingress := slices.Sorted(maps.Keys(rs.Egress)), slices.Sorted(maps.Keys(rs.Ingress))
	writeBaseChain(&b, "forward", egress, ingress)
	writeBaseChain(&b, "input", egress, nil)
	for i, ip := range egress {
		writeChain(&b, fmt.Sprintf("egress_%d", i), "daddr", rs.Egress[ip])
	}
	for i, ip := range ingress {
		writeChain(&b, fmt.Sprintf("ingress_%d", i), "saddr", rs.Ingress[ip])
	}
	b.WriteString("}\n")
	return b.String()
}

// writeBaseChain hooks the per-pod chains: egress first (by source), then
// ingress (by destination), so a flow between two isolated pods needs both.
func writeBaseChain(b *strings.Builder, hook string, egress, ingress []string) {
	fmt.Fprintf(b, "\tchain %s {\n\t\ttype filter hook %s priority filter; policy accept;\n", hook, hook)
	b.WriteString("\t\tct state established,related accept\n")
	writeDispatch(b, "saddr", "egress", egress)
	writeDispatch(b, "daddr", "ingress", ingress)
	b.WriteString("\t}\n")
}

func writeDispatch(b *strings.Builder, field, prefix string, ips []string) {
	if len(ips) == 0 {
		return
	}
	entries := make([]string, len(ips))
	for i, ip := range ips {
		entries[i] = fmt.Sprintf("%s : jump %s_%d", ip, prefix, i)
	}
	fmt.Fprintf(b, "\t\tip %s vmap { %s }\n", field, strings.Join(entries, ", "))
}

// writeChain writes one pod's chain in one direction; field is the peer's
// address field (saddr for ingress, daddr for egress).
func writeChain(b *strings.Builder, name, field string, allows []Allow) {
	fmt.Fprintf(b, "\tchain %s {\n", name)
	for _, a := range allows {
		for _, peer := range peerExprs(field, a.Peers) {
			for _, port := range portExprs(a.Ports) {
				fmt.Fprintf(b, "\t\t%s return\n", strings.TrimSpace(peer+" "+port))
			}
		}
	}
	b.WriteString("\t\tdrop\n\t}\n")
}

// peerExprs are the nft matches of the peers, one per peer; "" (any
// address) when there are none.
func peerExprs(field string, peers []Peer) []string {
	if peers == nil {
		return []string{""}
	}
	out := make([]string, 0, len(peers))
	for _, p := range peers {
		m := fmt.Sprintf("ip %s %s", field, canonical(p.CIDR))
		if len(p.Except) > 0 {
			ex := make([]string, len(p.Except))
			for i, e := range p.Except {
				ex[i] = canonical(e)
			}
			m += fmt.Sprintf(" ip %s != { %s }", field, strings.Join(ex, ", "))
		}
		out = append(out, m)
	}
	return out
}

// portExprs are the nft matches of the ports grouped by protocol; ""
// (any port, any protocol) when there are none.
func portExprs(ports []Port) []string {
	if ports == nil {
		return []string{""}
	}
	byProto := map[string][]string{}
	var protos []string
	for _, p := range ports {
		proto := strings.ToLower(p.Protocol)
		if _, ok := byProto[proto]; !ok {
			protos = append(protos, proto)
		}
		switch {
		case p.Port == 0:
			byProto[proto] = append(byProto[proto], "")
		case p.EndPort > p.Port:
			byProto[proto] = append(byProto[proto], fmt.Sprintf("%d-%d", p.Port, p.EndPort))
		default:
			byProto[proto] = append(byProto[proto], fmt.Sprint(p.Port))
		}
	}
	sort.Strings(protos)
	out := make([]string, 0, len(protos))
	for _, proto := range protos {
		m := "meta l4proto " + proto
		if !slices.Contains(byProto[proto], "") {
			m += fmt.Sprintf(" th dport { %s }", strings.Join(byProto[proto], ", "))
		}
		out = append(out, m)
	}
	return out
}

// canonical is the CIDR's network form (nft refuses host bits).
func canonical(cidr string) string {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return cidr
	}
	return n.String()
}

// Apply loads the script with nft (check only: nothing changes).
func Apply(ctx context.Context, script string, checkOnly bool) error {
	args := []string{"-f", "-"}
	if checkOnly {
		args = append([]string{"-c"}, args...)
	}
	cmd := exec.CommandContext(ctx, "nft", args...)
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Delete removes the table if it exists.
func Delete(ctx context.Context) error {
	return Apply(ctx, fmt.Sprintf("table inet %s\ndelete table inet %s\n", Table, Table), false)
}
