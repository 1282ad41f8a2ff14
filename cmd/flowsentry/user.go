package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	osuser "os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/store"
)

const userUsage = `usage: flowsentry user COMMAND NAME [flags]

commands:
  add NAME --role admin|manager|viewer [--partitions 0,5] [--groups 1,2] [--password-stdin]
  passwd NAME [--password-stdin]   set a new password and end the user's login sessions
  list [--json]
  delete NAME

Each works on the database of the data folder that --config (and --data)
name, with the server stopped or running; a running server applies a
changed password or a deleted user within a second. The password is read
from the terminal, twice, without echo, or as one line from standard input
with --password-stdin; never from a flag or the environment.

Exit status: 0 done, 1 refused or failed, 2 usage error.
`

// maxPasswordLen is bcrypt's limit, the same as the API's.
const maxPasswordLen = 72

// validUserName is what a user name may be made of, as in the API.
var validUserName = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// userCmd runs "flowsentry user ...".
func userCmd(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return 2
	}
	u := &userShell{stdin: stdin, stdout: stdout, stderr: stderr, cmd: args[0]}
	switch args[0] {
	case "add", "passwd", "list", "delete":
		return u.run(args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(stdout, userUsage)
		return 0
	}
	fmt.Fprintf(stderr, "flowsentry user: unknown command %q\n\n%s", args[0], userUsage)
	return 2
}

// userShell is one run of a user command.
type userShell struct {
	stdin          *os.File
	stdout, stderr io.Writer
	cmd            string

	configPath, data string
	role             string
	cids, groups     idList
	passwordStdin    bool
	asJSON           bool

	st    *store.Store
	model *model.Model
}

// usageError is a command line that cannot be run as written: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run parses the flags of u.cmd, opens the database and does the work.
func (u *userShell) run(args []string) int {
	name, err := u.parse(args)
	if err == nil {
		err = u.exec(name)
	}
	if u.st != nil {
		if cerr := u.st.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(u.stderr, "flowsentry user %s: %v\n", u.cmd, err)
		return 2
	case err != nil:
		fmt.Fprintf(u.stderr, "flowsentry user %s: %v\n", u.cmd, err)
		return 1
	}
	return 0
}

// parse reads the flags and the NAME, which may come before or after
// them.
func (u *userShell) parse(args []string) (string, error) {
	fs := flag.NewFlagSet("user "+u.cmd, flag.ContinueOnError)
	fs.SetOutput(u.stderr)
	fs.StringVar(&u.configPath, "config", "", "YAML configuration `file` of the server (default: the embedded default)")
	fs.StringVar(&u.data, "data", "", "data `folder`, replacing the configuration's data_dir")
	switch u.cmd {
	case "add":
		fs.StringVar(&u.role, "role", "", "`role` of the user: admin, manager or viewer")
		fs.Var(&u.cids, "partitions", "comma-separated partition `IDs` (CIDs) a manager or viewer is bound to")
		fs.Var(&u.groups, "groups", "comma-separated traffic group `IDs` a manager or viewer is restricted to")
		fallthrough
	case "passwd":
		fs.BoolVar(&u.passwordStdin, "password-stdin", false, "read the password as one line from standard input")
	case "list":
		fs.BoolVar(&u.asJSON, "json", false, "print JSON, the users as GET /api/v1/users shows them")
	}
	// The flag package stops at the first argument that is not a flag:
	// NAME may stand anywhere among them.
	var name string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", usageError{"see the flags above"}
		}
		if fs.NArg() == 0 {
			break
		}
		if name != "" {
			return "", usageError{fmt.Sprintf("unexpected argument %q: give one user NAME and flags", fs.Arg(0))}
		}
		name, args = fs.Arg(0), fs.Args()[1:]
	}
	switch {
	case u.cmd == "list" && name != "":
		return "", usageError{fmt.Sprintf("unexpected argument %q: list takes no NAME", name)}
	case u.cmd != "list" && name == "":
		return "", usageError{fmt.Sprintf("the user NAME is missing: flowsentry user %s NAME", u.cmd)}
	case u.cmd == "add" && u.role == "":
		return "", usageError{"--role is missing: give --role admin, manager or viewer"}
	}
	return name, nil
}

// exec opens the database and runs the command on user name.
func (u *userShell) exec(name string) error {
	if u.cmd == "add" && !validUserName.MatchString(name) {
		return fmt.Errorf("name %q is not valid: use 1 to 64 letters, digits, '.', '_', '@' or '-'", name)
	}
	if err := u.open(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch u.cmd {
	case "add":
		return u.add(ctx, name)
	case "passwd":
		return u.passwd(ctx, name)
	case "delete":
		return u.delete(ctx, name)
	}
	return u.list(ctx)
}

// open loads the configuration and opens the database of its data
// folder, which must exist: a mistyped --config or --data must not create
// an empty database (with no users) somewhere else.
func (u *userShell) open() error {
	f, err := loadConfig(u.configPath, overrides{data: u.data})
	if err != nil {
		return err
	}
	dir := f.Config.DataDir
	if !store.Exists(dir) {
		abs, _ := filepath.Abs(dir)
		return fmt.Errorf("no database in data folder %s: pass the --config (or --data) of your server, or start \"flowsentry serve\" once to create it", abs)
	}
	if u.cmd == "add" {
		if u.model, err = model.Build(f.Config.Model); err != nil {
			return f.Locate(err)
		}
	}
	u.st, err = store.Open(context.Background(), dir, nil)
	return err
}

// add creates a user.
func (u *userShell) add(ctx context.Context, name string) error {
	role := store.Role(u.role)
	if role == "user" {
		role = store.RoleViewer
	}
	if !role.Valid() {
		return fmt.Errorf("--role %q is not valid: use admin, manager or viewer (or user, the same as viewer)", u.role)
	}
	nu := store.User{Name: name, Role: role, CIDs: u.cids, Groups: u.groups}
	if err := checkBindings(u.model, nu); err != nil {
		return err
	}
	password, err := u.password(name)
	if err != nil {
		return err
	}
	err = u.st.CreateUser(ctx, nu, password)
	if errors.Is(err, store.ErrUserExists) {
		return fmt.Errorf("user %q exists already: \"flowsentry user passwd %s\" changes its password, the web UI or PUT /api/v1/users/%s the rest", name, name, name)
	}
	if err != nil {
		return err
	}
	summary := fmt.Sprintf("user %s role %s partitions %v groups %v, password set", name, role, ids(nu.CIDs), ids(nu.Groups))
	return u.done(ctx, summary)
}

// passwd sets a user's password.
func (u *userShell) passwd(ctx context.Context, name string) error {
	// Before asking: an unknown name is refused without typing twice.
	if _, err := u.st.User(ctx, name); err != nil {
		return u.lookupError(name, err)
	}
	password, err := u.password(name)
	if err != nil {
		return err
	}
	if err := u.st.SetPassword(ctx, name, password); err != nil {
		return u.lookupError(name, err)
	}
	return u.done(ctx, "user "+name+" password set, sessions ended")
}

// delete removes a user, its sessions and its tokens.
func (u *userShell) delete(ctx context.Context, name string) error {
	err := u.st.DeleteUser(ctx, name)
	if errors.Is(err, store.ErrLastAdmin) {
		return fmt.Errorf("user %q: %w", name, store.ErrLastAdmin)
	}
	if err != nil {
		return u.lookupError(name, err)
	}
	return u.done(ctx, "user "+name+" deleted")
}

// lookupError names an unknown user and how to list them.
func (u *userShell) lookupError(name string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q: \"flowsentry user list\" shows them", name)
	}
	return err
}

// done writes the audit entry of a change and tells the operator.
func (u *userShell) done(ctx context.Context, summary string) error {
	err := u.st.AddAudit(ctx, store.AuditEntry{
		Time: time.Now(), User: "shell:" + osUserName(), Addr: "local",
		Method: "SHELL", Path: "flowsentry user " + u.cmd, Summary: summary,
	})
	if err != nil {
		return fmt.Errorf("%s, but writing the audit log failed: %w", summary, err)
	}
	fmt.Fprintln(u.stdout, summary)
	return nil
}

// list prints the users.
func (u *userShell) list(ctx context.Context) error {
	users, err := u.st.Users(ctx)
	if err != nil {
		return err
	}
	if u.asJSON {
		out := make([]store.User, len(users))
		for i, x := range users {
			out[i] = store.User{Name: x.Name, Role: x.Role, CIDs: ids(x.CIDs), Groups: ids(x.Groups)}
		}
		enc := json.NewEncoder(u.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(u.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tPARTITIONS\tGROUPS")
	for _, x := range users {
		cids, groups := "all", "all"
		if x.Role != store.RoleAdmin {
			cids, groups = idText(x.CIDs, "none"), idText(x.Groups, "all of its partitions")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Name, x.Role, cids, groups)
	}
	return tw.Flush()
}

// idText shows a list of IDs comma-separated, or none when it is empty.
func idText(l []uint32, none string) string {
	if len(l) == 0 {
		return none
	}
	s := make([]string, len(l))
	for i, id := range l {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	return strings.Join(s, ",")
}

// ids is a list of IDs as JSON shows it: [] rather than null.
func ids(l []uint32) []uint32 {
	if l == nil {
		return []uint32{}
	}
	return l
}

// password reads the new password of user name: one line of standard
// input with --password-stdin, else twice from the terminal without echo.
func (u *userShell) password(name string) (string, error) {
	var pw string
	switch {
	case u.passwordStdin:
		line, err := bufio.NewReaderSize(io.LimitReader(u.stdin, 4096), 4096).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	case term.IsTerminal(int(u.stdin.Fd())):
		fd := int(u.stdin.Fd())
		fmt.Fprintf(u.stderr, "New password for %s: ", name)
		first, err := term.ReadPassword(fd)
		fmt.Fprintln(u.stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password from the terminal: %w", err)
		}
		fmt.Fprintf(u.stderr, "Repeat the password: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(u.stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password from the terminal: %w", err)
		}
		if string(first) != string(again) {
			return "", errors.New("the two passwords differ: run the command again")
		}
		pw = string(first)
	default:
		return "", usageError{"standard input is not a terminal: give --password-stdin to read the password as one line from it"}
	}
	if pw == "" || len(pw) > maxPasswordLen {
		return "", fmt.Errorf("the password is %d bytes long: give 1 to %d bytes", len(pw), maxPasswordLen)
	}
	return pw, nil
}

// checkBindings checks, as the API does, that u's partitions exist in the
// configured model and its groups belong to them.
func checkBindings(m *model.Model, u store.User) error {
	switch p, id, cid := m.CheckBinding(u.CIDs, u.Groups, u.Role == store.RoleAdmin); p {
	case model.UnknownPartition:
		return fmt.Errorf("--partitions: partition %d does not exist in the configuration: use one of %v", id, partitionIDs(m))
	case model.UnknownGroup:
		return fmt.Errorf("--groups: traffic group %d does not exist in the configuration: GET /api/v1/trafficgroups lists them", id)
	case model.GroupOutsidePartitions:
		return fmt.Errorf("--groups: traffic group %d is in partition %d, which is not in --partitions %v: add the partition or leave the group out", id, cid, ids(u.CIDs))
	}
	return nil
}

// osUserName is the name of the operating-system user running the
// command, or its uid when it has no name.
func osUserName() string {
	if cu, err := osuser.Current(); err == nil && cu.Username != "" {
		return cu.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// idList is a comma-separated flag of uint32 IDs.
type idList []uint32

func (l *idList) String() string { return fmt.Sprint([]uint32(*l)) }

func (l *idList) Set(s string) error {
	*l = nil
	for f := range strings.SplitSeq(s, ",") {
		id, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a number: give comma-separated IDs such as 0,5", f)
		}
		*l = append(*l, uint32(id))
	}
	return nil
}
