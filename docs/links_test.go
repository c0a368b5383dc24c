// Package docs holds the documentation pages (docs/*.md). It has no code:
// its test checks that every relative link and anchor in the front page
// (README.md) and in every page here resolves, and that no page points
// outside the repository.
package docs

import (
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// root is the repository, seen from this package's directory (where go
// test runs).
const root = ".."

// pages lists the Markdown files whose links are checked: the front page
// and every page in docs/.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md: the test runs in the wrong directory")
	}
	return append([]string{filepath.Join(root, "README.md")}, docs...)
}

// Every relative link of the front page and the docs resolves: the file
// (or directory) exists inside the repository, and an anchor names a
// heading of its page.
func TestLinksAndAnchorsResolve(t *testing.T) {
	c := newChecker(root)
	for _, p := range pages(t) {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, problem := range c.check(p, src) {
			t.Error(problem)
		}
	}
}

// No page cites a document outside the repository: a reader of the
// repository cannot follow it.
func TestNoPageCitesAnythingOutsideTheRepository(t *testing.T) {
	forbidden := []string{"../shared", "/work/", "SPEC §", "design/value-cache", "value-cache.md"}
	for _, p := range pages(t) {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			for _, f := range forbidden {
				if strings.Contains(line, f) {
					t.Errorf("%s:%d: %q points outside the repository", p, i+1, f)
				}
			}
		}
	}
}

// No comment or string in the code, scripts or manifests cites a document
// outside the repository either (the specification's sections, the design
// notes it was built from).
func TestNoCodeCitesAnythingOutsideTheRepository(t *testing.T) {
	forbidden := []string{"SPEC §", "design/value-cache", "§7"}
	self, _ := filepath.Abs("links_test.go")
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n != ".." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".go", ".sh", ".yaml", ".yml", ".lua", ".mod":
		default:
			if filepath.Base(p) != "Makefile" && filepath.Base(p) != "Dockerfile" {
				return nil
			}
		}
		if abs, _ := filepath.Abs(p); abs == self {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			for _, f := range forbidden {
				if strings.Contains(line, f) {
					t.Errorf("%s:%d: %q points outside the repository", p, i+1, f)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The check itself fails on a missing file, a missing anchor (in the same
// page or another), a link out of the repository and an absolute path, and
// ignores links in code.
func TestTheCheckFindsWhatIsBroken(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(repo, "docs"), 0o755))
	must(os.WriteFile(filepath.Join(repo, "docs", "other.md"), []byte("# Other\n\n## A `code` heading: yes!\n## Twice\n## Twice\n"), 0o644))
	page := filepath.Join(repo, "docs", "page.md")
	src := strings.Join([]string{
		"# Page",
		"## Here",
		"[ok](other.md) [ok](other.md#a-code-heading-yes) [ok](#here) [ok](other.md#twice-1) [ok](../docs/)",
		"[ok](https://example.com/x.md) [ok](mailto:a@b.c) `[code](missing.md)`",
		"```md",
		"[fenced](missing.md)",
		"```",
		"[bad](missing.md)",
		"[bad](other.md#nowhere)",
		"[bad](#nowhere)",
		"[bad](other.md#twice-2)",
		"[bad](../../outside.md)",
		"[bad](/docs/other.md)",
		"[ref]: missing-too.md",
	}, "\n")
	got := newChecker(repo).check(page, []byte(src))
	want := []string{"missing.md", "other.md#nowhere", "#nowhere", "other.md#twice-2", "../../outside.md", "/docs/other.md", "missing-too.md"}
	if len(got) != len(want) {
		t.Fatalf("problems found:\n%s\nwant one for each of %q", strings.Join(got, "\n"), want)
	}
	for i, w := range want {
		if !strings.Contains(got[i], "("+w+")") {
			t.Errorf("problem %d: %s; want one about %s", i, got[i], w)
		}
	}
}

func TestSlugsAreGitHubs(t *testing.T) {
	for heading, want := range map[string]string{
		"Cache modes":           "cache-modes",
		"The `local` mode":      "the-local-mode",
		"What `make test` does": "what-make-test-does",
		"Servers, capabilities, and how they differ from MongoDB": "servers-capabilities-and-how-they-differ-from-mongodb",
		"FerretDB v2 + DocumentDB":                                "ferretdb-v2--documentdb",
		"Manifest reference (version 1)":                          "manifest-reference-version-1",
		"Operating it: `persistgen-ops`":                          "operating-it-persistgen-ops",
		"READ, FILL and RELEASE":                                  "read-fill-and-release",
		"snake_case stays":                                        "snake_case-stays",
		"A [linked](x.md) heading":                                "a-linked-heading",
		"**Bold** and *em*":                                       "bold-and-em",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// checker checks pages' links, reading each linked page's headings once.
type checker struct {
	root    string
	anchors map[string]map[string]bool // by cleaned path
}

func newChecker(root string) *checker {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return &checker{root: root, anchors: map[string]map[string]bool{}}
}

var (
	// linkRE is an inline link or image: [text](target "title").
	linkRE = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^()\s<>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// refRE is a reference definition: [label]: target.
	refRE     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?([^\s<>]+)>?`)
	headingRE = regexp.MustCompile(`^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	codeRE    = regexp.MustCompile("`+[^`]*`+")
	schemeRE  = regexp.MustCompile(`^(?i)(https?|mailto):`)
)

// check returns a line per broken link of page (a path as the test reads
// it), whose content is src.
func (c *checker) check(page string, src []byte) []string {
	var problems []string
	lines, _ := parse(src)
	for _, l := range lines {
		for _, target := range l.targets {
			if msg := c.resolve(page, src, target); msg != "" {
				problems = append(problems, page+":"+strconv.Itoa(l.n)+": ("+target+") "+msg)
			}
		}
	}
	return problems
}

// resolve returns what is wrong with target, a link on page, or "".
func (c *checker) resolve(page string, src []byte, target string) string {
	if schemeRE.MatchString(target) {
		return ""
	}
	path, anchor, _ := strings.Cut(target, "#")
	path, err := url.PathUnescape(path)
	if err != nil {
		return "not a valid path: " + err.Error()
	}
	if strings.HasPrefix(path, "/") {
		return "an absolute path: write it relative to the page"
	}
	if abs, err := filepath.Abs(page); err == nil {
		page = abs
	}
	file := page
	if path != "" {
		file = filepath.Join(filepath.Dir(page), path)
		rel, err := filepath.Rel(c.root, file)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "points outside the repository"
		}
		if _, err := os.Stat(file); err != nil {
			return "no such file"
		}
	}
	if anchor == "" || !strings.EqualFold(filepath.Ext(file), ".md") {
		return "" // anchors of other files (a code line) are not checked
	}
	anchors, ok := c.anchors[file]
	if !ok {
		if path != "" {
			var err error
			if src, err = os.ReadFile(file); err != nil {
				return err.Error()
			}
		}
		_, anchors = parse(src)
		c.anchors[file] = anchors
	}
	if !anchors[anchor] {
		return "no heading has the anchor #" + anchor
	}
	return ""
}

// line is a line of a page with the link targets it holds.
type line struct {
	n       int
	targets []string
}

// parse returns the lines of src that hold links, and the anchors of its
// headings, skipping fenced code blocks (and links in inline code).
func parse(src []byte) ([]line, map[string]bool) {
	var out []line
	anchors := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	for i, text := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimLeft(text, " \t")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]+" \t") == "" {
				fence = ""
			}
			continue
		}
		if f := fenceOf(trimmed); f != "" {
			fence = f
			continue
		}
		if m := headingRE.FindStringSubmatch(text); m != nil {
			s := slug(m[2])
			if n, dup := seen[s]; dup {
				seen[s] = n + 1
				s += "-" + strconv.Itoa(n+1)
			} else {
				seen[s] = 0
			}
			anchors[s] = true
		}
		plain := codeRE.ReplaceAllString(text, "")
		var targets []string
		for _, m := range linkRE.FindAllStringSubmatch(plain, -1) {
			targets = append(targets, m[1])
		}
		if m := refRE.FindStringSubmatch(plain); m != nil {
			targets = append(targets, m[1])
		}
		if len(targets) > 0 {
			out = append(out, line{n: i + 1, targets: targets})
		}
	}
	return out, anchors
}

// fenceOf returns the fence a line opens (``` or ~~~, three or more), or "".
func fenceOf(trimmed string) string {
	for _, c := range []string{"`", "~"} {
		n := len(trimmed) - len(strings.TrimLeft(trimmed, c))
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

var mdLinkRE = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// slug is GitHub's anchor for a heading: its text (a link's text, not its
// target) in lower case, with punctuation and symbols dropped except - and
// _, and each space a hyphen. Duplicates are numbered by parse.
func slug(heading string) string {
	text := mdLinkRE.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
