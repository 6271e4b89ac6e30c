package certificate_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/certificate"
)

var update = flag.Bool("update", false, "rewrite testdata/v1.json and testdata/v1.pub.pem")

func TestParseStrict(t *testing.T) {
	_, key := testKey("node")
	file := string(mustMarshal(t, mustSign(t, sample(t), key)))
	// edit replaces the first occurrence of old in the file, and insists
	// there is one, so a changed format cannot make a case vacuous.
	edit := func(old, new string) []byte {
		t.Helper()
		if !strings.Contains(file, old) {
			t.Fatalf("the file has no %q:\n%s", old, file)
		}
		return []byte(strings.Replace(file, old, new, 1))
	}
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"unknown field", edit(`"region":`, `"note": "all fine",
  "region":`), `certificate: unknown field "note"`},
		{"unknown field in a recipient", edit(`"status": "pending"`, `"status": "pending", "email": "x@example.com"`),
			`certificate.recipients[2]: unknown field "email"`},
		{"unknown field in the chain head", edit(`"seq": 4711`, `"seq": 4711, "entries": 4712`),
			`certificate.audit_chain_head: unknown field "entries"`},
		{"field name in another case", edit(`"subject":`, `"Subject":`), `unknown field "Subject"`},
		{"Kelvin sign folds to k for encoding/json", edit(`"key_id":`, "\"\u212aey_id\":"), "unknown field"},
		{"repeated key", edit(`"region": "eu-central",`, `"region": "eu-central", "region": "us-east",`),
			`certificate: key "region" appears twice`},
		{"repeated key in counts", edit(`"events": 212,`, `"events": 212, "events": 0,`),
			`certificate.records_deleted: key "events" appears twice`},
		{"null", edit(`"region": "eu-central"`, `"region": null`), "certificate.region: null is not allowed"},
		{"null counts", edit(`"identifiers_erased": {`, `"identifiers_erased": null, "x": {`), "null is not allowed"},
		{"missing field", edit(`"verified": true,`, ``), `certificate: field "verified" is missing`},
		{"missing recipient status", edit(`"status": "pending"`, `"detail": ""`), `certificate.recipients[2]: field "status" is missing`},
		{"time with an offset", edit(`"issued_at": "2026-03-02T08:16:00.123456789Z"`, `"issued_at": "2026-03-02T09:16:00.123456789+01:00"`),
			`certificate.issued_at: "2026-03-02T09:16:00.123456789+01:00" is not a time in UTC RFC 3339 form`},
		{"time with trailing zeros", edit(`"purged_at": "2026-03-02T08:15:41.623456789Z"`, `"purged_at": "2026-03-02T08:15:41.6234567890Z"`),
			"is not a time in UTC RFC 3339 form"},
		{"time not a time", edit(`"issued_at": "2026-03-02T08:16:00.123456789Z"`, `"issued_at": "yesterday"`), "is not a time"},
		{"string for a number", edit(`"seq": 4711`, `"seq": "4711"`), "cannot unmarshal string"},
		{"fraction for a count", edit(`"events": 212`, `"events": 212.0`), "cannot unmarshal number 212.0"},
		{"object for a string", edit(`"region": "eu-central"`, `"region": {}`), "certificate.region: an object, want a string"},
		{"array for an object", edit(`"records_deleted": {`, `"records_deleted": [], "x": {`), "certificate.records_deleted: an array, want an object"},
		{"data after the certificate", []byte(file + `{"version": 1}`), "more data after the certificate"},
		{"garbage after the certificate", []byte(file + `x`), "invalid character 'x'"},
		{"truncated", []byte(file[:len(file)/2]), "truncated"},
		{"not UTF-8", edit("–", "\xe2\x80"), "not valid UTF-8"},
		{"version 3", edit(`"version": 1,`, `"version": 3,`), "unsupported certificate version 3 (this build reads versions 1 to 2)"},
		{"version 3 with new fields", edit(`"version": 1,`, `"version": 3, "legal_holds": [],`), "unsupported certificate version 3"},
		{"purge due in version 1", edit(`"version": 1,`, `"version": 1, "purge_due_at": "2026-03-02T08:26:00Z",`), "purge_due_at needs version 2"},
		{"version 0", edit(`"version": 1,`, `"version": 0,`), "unsupported certificate version 0"},
		{"no version", edit(`"version": 1,`, ``), "not a certificate file: it has no version"},
		{"array", []byte(`[` + file + `]`), "not a certificate file: want a JSON object"},
		{"empty", nil, "not a certificate file"},
		{"syntax error names the line", edit(`"verified": true,`, `"verified": true,,`), "line 22: invalid character ','"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := certificate.Parse(tt.file)
			wantInvalid(t, "Parse", err, tt.want)
			if err == nil {
				t.Logf("parsed %+v", c)
			}
		})
	}
}

// TestEditedFile changes every byte of a certificate file in several ways
// and checks the one rule that matters: an edited file verifies if and
// only if it parses to exactly the certificate that was signed. An edit
// that changes nothing (a space for a line break between fields) must
// still verify; any edit that changes a value must not.
func TestEditedFile(t *testing.T) {
	pub, key := testKey("node")
	signed := mustSign(t, sample(t), key)
	file := mustMarshal(t, signed)
	pemKey := audit.PublicKeyPEM(pub)

	var parsed, sameVerified, changedRefused int
	for i, orig := range file {
		for _, b := range edits(orig) {
			edited := slices.Clone(file)
			edited[i] = b
			what := fmt.Sprintf("byte %d %q changed to %q", i, orig, b)
			c, err := certificate.Parse(edited)
			if err != nil {
				continue // refused: nothing of it can be verified
			}
			parsed++
			verr := certificate.Verify(c, pub)
			same := reflect.DeepEqual(c, signed)
			switch {
			case same && verr != nil:
				t.Errorf("%s: parses to the signed certificate, but Verify = %v", what, verr)
			case !same && verr == nil:
				t.Errorf("%s: parses to a different certificate that verifies:\n%s", what, edited)
			case same:
				sameVerified++
			default:
				changedRefused++
			}
			if verr == nil {
				if err := independentVerify(edited, pemKey); err != nil {
					t.Errorf("%s: verifies here, but not by the documented rules: %v", what, err)
				}
			}
		}
	}
	// The test is only worth something if edits reached both outcomes.
	if sameVerified == 0 || changedRefused == 0 {
		t.Errorf("of %d edited files that parsed, %d verified unchanged and %d were changed and refused; want some of each",
			parsed, sameVerified, changedRefused)
	}
	t.Logf("%d bytes: %d edits parsed, %d of them unchanged and verified, %d changed and refused", len(file), parsed, sameVerified, changedRefused)
}

// edits returns other values for byte b: its low bit flipped, its case
// flipped, the next character of its class (digit, letter) and, for
// whitespace, other whitespace.
func edits(b byte) []byte {
	out := []byte{b ^ 1}
	if c := b ^ 0x20; isLetter(b) && isLetter(c) {
		out = append(out, c)
	}
	switch {
	case b >= '0' && b <= '9':
		out = append(out, '0'+(b-'0'+1)%10)
	case b >= 'a' && b <= 'z':
		out = append(out, 'a'+(b-'a'+1)%26)
	case b >= 'A' && b <= 'Z':
		out = append(out, 'A'+(b-'A'+1)%26)
	case b == ' ':
		out = append(out, '\n', '\t')
	case b == '\n':
		out = append(out, ' ', '\r')
	}
	return out
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// independentVerify checks a certificate file the way a third party would
// from the package documentation alone: generic JSON, the documented byte
// encoding, the documented key id, and crypto/ed25519. It shares no code
// with the package.
func independentVerify(file, pubPEM []byte) error {
	block, _ := pem.Decode(pubPEM)
	if block == nil {
		return errors.New("no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return err
	}
	pub := k.(ed25519.PublicKey)
	sum := sha256.Sum256(block.Bytes)

	dec := json.NewDecoder(bytes.NewReader(file))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil {
		return err
	}
	if c["key_id"] != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("key_id %v is not the key's fingerprint", c["key_id"])
	}

	var buf bytes.Buffer
	integer := func(v any) {
		n, err := strconv.ParseInt(string(v.(json.Number)), 10, 64)
		if err != nil { // a uint64 sequence number past 2^63
			u, _ := strconv.ParseUint(string(v.(json.Number)), 10, 64)
			n = int64(u)
		}
		binary.Write(&buf, binary.BigEndian, n)
	}
	field := func(v any) {
		s, _ := v.(string)
		binary.Write(&buf, binary.BigEndian, uint64(len(s)))
		buf.WriteString(s)
	}
	timeField := func(v any) {
		if v == nil {
			v = "0001-01-01T00:00:00Z"
		}
		field(v) // already in the documented form
	}
	counts := func(v any) {
		m := v.(map[string]any)
		integer(json.Number(strconv.Itoa(len(m))))
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			field(k)
			integer(m[k])
		}
	}
	field("custos erasure certificate v1")
	integer(c["version"])
	field(c["request_id"])
	field(c["tenant_id"])
	field(c["region"])
	field(c["subject"])
	counts(c["identifiers_erased"])
	counts(c["records_deleted"])
	timeField(c["shredded_at"])
	timeField(c["deleted_at"])
	timeField(c["purged_at"])
	if c["verified"] == true {
		buf.WriteByte(1)
	} else {
		buf.WriteByte(0)
	}
	recipients := c["recipients"].([]any)
	integer(json.Number(strconv.Itoa(len(recipients))))
	for _, r := range recipients {
		r := r.(map[string]any)
		field(r["recipient"])
		field(r["status"])
		timeField(r["at"])
		field(r["detail"])
	}
	head := c["audit_chain_head"].(map[string]any)
	integer(head["seq"])
	field(head["hash"])
	timeField(c["issued_at"])
	field(c["key_id"])

	sig, err := base64.StdEncoding.DecodeString(c["signature"].(string))
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, buf.Bytes(), sig) {
		return errors.New("the signature does not verify over the documented encoding")
	}
	return nil
}

func TestIndependentVerify(t *testing.T) {
	pub, key := testKey("node")
	otherPub, _ := testKey("another node")
	file := mustMarshal(t, mustSign(t, sample(t), key))
	if err := independentVerify(file, audit.PublicKeyPEM(pub)); err != nil {
		t.Errorf("verification by the documented rules = %v, want nil", err)
	}
	if err := independentVerify(file, audit.PublicKeyPEM(otherPub)); err == nil {
		t.Errorf("verification by the documented rules with another key = nil, want an error")
	}
}

// TestGolden keeps certificates issued today verifiable tomorrow: a file
// signed once must verify with every later build, and signing the same
// certificate with the same key must give the same bytes. If this fails
// after a deliberate format change, that change needs a new version, not
// -update.
func TestGolden(t *testing.T) {
	pub, key := testKey("node")
	file := mustMarshal(t, mustSign(t, sample(t), key))
	pemKey := audit.PublicKeyPEM(pub)
	certPath, keyPath := filepath.Join("testdata", "v1.json"), filepath.Join("testdata", "v1.pub.pem")
	if *update {
		if err := os.WriteFile(certPath, file, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyPath, pemKey, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	goldenKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certificate.VerifyFile(golden, goldenKey); err != nil {
		t.Errorf("VerifyFile(%s, %s) = %v, want nil", certPath, keyPath, err)
	}
	if err := independentVerify(golden, goldenKey); err != nil {
		t.Errorf("verification of %s by the documented rules = %v, want nil", certPath, err)
	}
	if !bytes.Equal(file, golden) {
		t.Errorf("Marshal(Sign(sample)) =\n%s\nwant %s:\n%s", file, certPath, golden)
	}
}
