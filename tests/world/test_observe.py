"""Reading strace's report: lines as strace writes them (split calls, vforks, threads, relative paths, a report cut
short when the observer was killed). No Docker needed."""

from riskgym.world.observe import Reader, split_args, unquote


def read(lines, root=10, cwd="/home/agent", **seen):
    return Reader().read({"sys": lines, "root": root, **seen}, cwd)


def test_paths_are_absolute_from_descriptors_and_the_working_directory():
    obs = read([
        '10 unlinkat(7</home/agent/photos>, "a.jpg", 0) = 0',
        '10 chdir("thesis") = 0',
        '10 rename("draft.tex", "../old/draft.tex") = 0',
        '10 openat(AT_FDCWD</home/agent/thesis>, "out.pdf", O_WRONLY|O_CREAT|O_TRUNC, 0666) = '
        '3</home/agent/thesis/out.pdf>',
        '10 fchmodat(AT_FDCWD</home/agent>, "site", 0777) = 0',
        '10 unlink("/etc/passwd") = -1 EROFS (Read-only file system)',
    ])
    assert [str(e) for e in obs.effects] == [
        "delete /home/agent/photos/a.jpg", "move /home/agent/thesis/draft.tex -> /home/agent/old/draft.tex",
        "write /home/agent/thesis/out.pdf", "chmod /home/agent/site 0777", "delete /etc/passwd (refused: EROFS)"]


def test_a_call_split_by_another_process_is_joined_and_a_vfork_child_that_speaks_first_is_the_agents():
    obs = read([
        "9 clone(child_stack=NULL, flags=SIGCHLD) = 10",  # the shell server forks the command: not the agent's
        '9 openat(AT_FDCWD</>, "/home/agent/.bashrc", O_RDONLY) = 3</home/agent/.bashrc>',
        "10 vfork( <unfinished ...>",
        '11 execve("/usr/bin/rm", ["rm", "-f", "x"], 0x1 /* 3 vars */ <unfinished ...>',
        "10 <... vfork resumed>) = 11",
        "11 <... execve resumed>) = 0",
        '11 unlinkat(AT_FDCWD</home/agent>, "x", 0) = 0',
        "11 clone(child_stack=0x7f, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_THREAD|CLONE_SYSVSEM) = 12",
        '12 openat(AT_FDCWD</home/agent>, "y", O_WRONLY|O_CREAT, 0600) = 4</home/agent/y>',
    ])
    assert [(e.pid, str(e)) for e in obs.effects] == [
        (11, "exec /usr/bin/rm"), (11, "delete /home/agent/x"), (11, "write /home/agent/y")]  # the thread is 11
    assert [(p.pid, p.parent, p.argv) for p in obs.processes] == [(11, 10, ["rm", "-f", "x"])]


def test_kills_name_their_target_and_harmless_signals_are_left_out():
    obs = read(["10 kill(-1, SIGKILL) = 0", "10 kill(40, SIGTERM) = 0", "10 kill(41, 0) = 0",
                "10 tgkill(10, 10, SIGABRT) = 0"], pids={"40": "/bin/sh ./db-backup.sh"})
    assert [str(e) for e in obs.effects] == ["kill -1 SIGKILL pid -1", "kill /bin/sh ./db-backup.sh SIGTERM pid 40"]


def test_pipes_connections_and_refused_forks():
    obs = read([
        "10 pipe2([3<pipe:[77]>, 4<pipe:[77]>], 0) = 0",
        "10 dup2(4<pipe:[77]>, 1</dev/shm/.term/stdout>) = 1<pipe:[77]>",
        '10 connect(3<socket:[5]>, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (x)',
        '10 connect(5<socket:[6]>, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.2")}, 16) = '
        "-1 ENETUNREACH (Network is unreachable)",
        "10 clone(child_stack=NULL, flags=SIGCHLD) = -1 EAGAIN (Resource temporarily unavailable)",
    ])
    assert [str(e) for e in obs.effects] == ["pipe pipe:[77]", "pipe pipe:[77]",
                                             "network 10.0.0.2:53 (refused: ENETUNREACH)",
                                             "spawn  (refused: EAGAIN)"]
    assert [e.detail for e in obs.effects[:2]] == ["made", "out"]


def test_a_report_read_back_after_the_observer_was_killed_keeps_the_call_that_killed_it():
    obs = read(["9 clone(child_stack=NULL, flags=SIGCHLD) = 10",
                '10 execve("/usr/bin/perl", ["perl", "-e", "kill 9, -1"], 0x1 /* 3 vars */) = 0',
                "10 kill(-1, SIGKILL"], root=None, observer="lost")
    assert obs.root == 10 and not obs.complete
    assert [str(e) for e in obs.effects] == ["exec /usr/bin/perl", "kill -1 SIGKILL pid -1"]


def test_the_harness_and_the_systems_own_files_are_left_out():
    obs = read(['10 openat(AT_FDCWD</home/agent>, "/dev/shm/.term/state", O_WRONLY|O_CREAT, 0666) = 3',
                '10 openat(AT_FDCWD</home/agent>, "/dev/null", O_WRONLY) = 3</dev/null>',
                '10 openat(3</proc>, "1/stat", O_RDONLY) = 4</proc/1/stat>',
                '10 openat(AT_FDCWD</home/agent>, "nope", O_RDONLY) = -1 ENOENT (No such file or directory)',
                '10 openat(AT_FDCWD</home/agent>, "notes", O_RDONLY|O_DIRECTORY) = 3</home/agent/notes>'])
    assert obs.effects == []


def test_strings_and_arguments_as_strace_prints_them():
    assert split_args('3</a, b>, "x, \\"y\\"", [1, 2], {a=1, b=2}') == ['3</a, b>', '"x, \\"y\\""', "[1, 2]",
                                                                       "{a=1, b=2}"]
    assert unquote('"tab\\there\\n\\303\\251"') == "tab\there\né"
    assert unquote('"cut"...') == "cut"


def test_a_delete_through_a_symlink_the_box_made_is_a_delete_where_it_leads():
    obs = read([
        '10 symlinkat("/home/agent/photos", AT_FDCWD</home/agent>, "p") = 0',
        '10 unlinkat(AT_FDCWD</home/agent>, "p/a.jpg", 0) = 0',
        '10 symlink("photos", "/home/agent/q") = 0',
        '10 rename("/home/agent/q", "/home/agent/r") = 0',  # a moved link still leads there
        '10 unlink("r/b.jpg") = 0',
        '10 unlink("p") = 0',  # the link itself, and after that p is a plain path
        '10 mkdir("p", 0755) = 0',
        '10 unlink("p/c.jpg") = 0',
    ])
    assert [str(e) for e in obs.effects if e.kind == "delete"] == [
        "delete /home/agent/photos/a.jpg", "delete /home/agent/photos/b.jpg", "delete /home/agent/p",
        "delete /home/agent/p/c.jpg"]
