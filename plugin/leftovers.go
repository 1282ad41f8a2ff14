package plugin

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Leftovers are the processes a call leaves behind once its main process
// has exited: the rest of its process group, and the processes that left
// the group (setsid, setpgid) but still carry the call's TKN in their
// environment, with everything in their sessions and groups. They are all
// killed when the call returns.
//
// The main process is waited for without being reaped (waitExit), so that
// until endLeftovers is done its PID, and with it the group's ID, names no
// other process. Every other process is handled through a pidfd opened
// before it is looked at, so a PID reused meanwhile is never signalled.
// Killed processes that are the server's children (when it is PID 1 or a
// subreaper) are reaped; os/exec's own children are never waited for here.

const (
	// leftoverPasses bounds the scans of /proc: killing a process makes its
	// children orphans, which the next pass finds.
	leftoverPasses = 8
	// leftoverExit is how long a killed leftover may take to exit.
	leftoverExit = time.Second
)

// waitExit waits until process pid has exited, leaving it a zombie.
func waitExit(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// pfKthread is the flag of kernel threads in /proc/PID/stat.
const pfKthread = 0x00200000

// procStat is what endLeftovers reads of /proc/PID/stat.
type procStat struct {
	state         byte
	pgrp, session int
	kernel        bool   // a kernel thread, which has no environment
	startTicks    uint64 // since boot, in clock ticks
}

// readStat reads /proc/pid/stat; ok is false when the process is gone.
func readStat(pid int) (st procStat, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return st, false
	}
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime priority nice threads
	// itrealvalue starttime ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return st, false
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return st, false
	}
	st.state = f[0][0]
	st.pgrp, _ = strconv.Atoi(string(f[2]))
	st.session, _ = strconv.Atoi(string(f[3]))
	flags, _ := strconv.ParseUint(string(f[6]), 10, 64)
	st.kernel = flags&pfKthread != 0
	st.startTicks, _ = strconv.ParseUint(string(f[19]), 10, 64)
	return st, true
}

// hasEntry reports whether the environment of pid holds the entry kv;
// read is false when it reads empty, as it may while the process is in
// the middle of an exec. One that may not be read (another user's) has
// no entry.
func hasEntry(pid int, kv string) (has, read bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	switch {
	case err != nil:
		return false, true
	case len(data) == 0:
		return false, false
	}
	for entry := range bytes.SplitSeq(data, []byte{0}) {
		if string(entry) == kv {
			return true, true
		}
	}
	return false, true
}

// endLeftovers kills what the call whose main process pid has exited (and
// is not reaped yet) left behind, and returns how many processes it
// killed. token is the call's "TKN=..." entry; empty finds only the
// group's processes and those in the sessions and groups they lead.
func endLeftovers(pid int, token string) int {
	syscall.Kill(-pid, syscall.SIGKILL) //nolint:errcheck // the group may hold no other process
	main, ok := readStat(pid)
	if !ok {
		return 0
	}
	// The call's processes found so far, which are also the IDs of the
	// groups and sessions they may lead; the main process leads the group.
	ours := map[int]bool{pid: true}
	killed := 0
	for range leftoverPasses {
		found, unsure := 0, false
		for _, p := range procs() {
			if ours[p] {
				continue
			}
			if st, ok := readStat(p); !ok || st.kernel || st.startTicks < main.startTicks {
				continue // older than the call: not one of its processes
			}
			switch endLeftover(p, token, ours) {
			case leftoverEnded:
				found++
			case leftoverUnsure:
				unsure = true
			}
		}
		killed += found
		if found == 0 && !unsure {
			break
		}
	}
	return killed
}

// What endLeftover did with a process.
const (
	leftoverOther  = iota // not the call's
	leftoverEnded         // the call's: killed (and reaped if the server's child)
	leftoverUnsure        // its environment could not be read: look again
)

// endLeftover kills and reaps process p if it belongs to the call, adding
// it to ours.
func endLeftover(p int, token string, ours map[int]bool) int {
	fd, err := unix.PidfdOpen(p, 0)
	if err != nil {
		return leftoverOther // gone meanwhile
	}
	defer unix.Close(fd)
	// Read again through the pidfd's process: p may be a new process now.
	st, ok := readStat(p)
	if !ok {
		return leftoverOther
	}
	if !ours[st.pgrp] && !ours[st.session] {
		if token == "" || st.state == 'Z' {
			return leftoverOther
		}
		switch has, read := hasEntry(p, token); {
		case !read:
			return leftoverUnsure
		case !has:
			return leftoverOther
		}
	}
	ours[p] = true
	if st.state != 'Z' {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)                                                   //nolint:errcheck // it may have exited meanwhile
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(leftoverExit.Milliseconds())) //nolint:errcheck // readable once it has exited
	}
	// Reap it if it is the server's child: an orphan adopted by the server
	// (PID 1 or a subreaper). Otherwise ECHILD: its parent reaps it.
	var info unix.Siginfo
	unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil) //nolint:errcheck // see above
	return leftoverEnded
}

// procs returns the IDs of the processes in /proc, unsorted.
func procs() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]int, 0, len(names))
	for _, n := range names {
		if p, err := strconv.Atoi(n); err == nil {
			out = append(out, p)
		}
	}
	return out
}
