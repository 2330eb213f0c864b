/* arip-sandbox.c: a worker applying its limits and sandbox to itself
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything here runs in the worker, before it says hello and long
 * before the function: resource limits, then a network namespace of its
 * own, no new privileges, Landlock and last the seccomp filter (which
 * forbids what the steps before it use). Each piece is probed by doing
 * it: what the kernel or the container refuses is reported with the
 * reason, never assumed.
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/landlock.h>

#ifdef HAVE_LIBSECCOMP
#include <seccomp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#endif

#include <glib/gi18n-lib.h>

#include "arip-channel-private.h"
#include "arip-isolation-private.h"
#include "arip-sandbox-private.h"
#include "arip-worker-private.h"

/* Rights newer than the kernel headers Debian 12 builds with. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER      (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE   (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV  (1ULL << 15)
#endif

static guint cpu_limit;          /* seconds per call; 0: none */
static gboolean cpu_limit_per_call;

void
arip_sandbox_report_clear (AripSandboxReport *report)
{
  g_clear_pointer (&report->problems, g_ptr_array_unref);
}

G_GNUC_PRINTF (2, 3) static void
problem (AripSandboxReport *report,
         const char        *format,
         ...)
{
  va_list args;

  va_start (args, format);
  g_ptr_array_add (report->problems, g_strdup_vprintf (format, args));
  va_end (args);
}

GBytes *
arip_sandbox_report_encode (const AripSandboxReport *report)
{
  GVariantBuilder problems;

  g_variant_builder_init (&problems, G_VARIANT_TYPE_STRING_ARRAY);
  for (guint i = 0; report->problems != NULL && i < report->problems->len; i++)
    g_variant_builder_add (&problems, "s", (const char *) report->problems->pdata[i]);
  return arip_frame_encode (ARIP_FRAME_SANDBOX,
                            g_variant_new ("(uubas)", (guint32) report->wanted,
                                           (guint32) report->applied, report->refused, &problems),
                            0);
}

/* ---------------------------------------------------------------------- */
/* Resource limits                                                        */

static const char *
rlimit_name (gint resource)
{
  switch (resource)
    {
    case RLIMIT_AS: return "RLIMIT_AS";
    case RLIMIT_CORE: return "RLIMIT_CORE";
    case RLIMIT_CPU: return "RLIMIT_CPU";
    case RLIMIT_DATA: return "RLIMIT_DATA";
    case RLIMIT_FSIZE: return "RLIMIT_FSIZE";
    case RLIMIT_MEMLOCK: return "RLIMIT_MEMLOCK";
    case RLIMIT_NOFILE: return "RLIMIT_NOFILE";
    case RLIMIT_NPROC: return "RLIMIT_NPROC";
    case RLIMIT_RSS: return "RLIMIT_RSS";
    case RLIMIT_STACK: return "RLIMIT_STACK";
    default: return NULL;
    }
}

static rlim_t
to_rlim (guint64 value)
{
  return value == G_MAXUINT64 ? RLIM_INFINITY : (rlim_t) value;
}

static guint64
cpu_seconds_used (void)
{
  struct rusage usage;

  guint64 us;

  if (getrusage (RUSAGE_SELF, &usage) < 0)
    return 0;
  us = ((guint64) usage.ru_utime.tv_sec + (guint64) usage.ru_stime.tv_sec) * G_USEC_PER_SEC +
       (guint64) usage.ru_utime.tv_usec + (guint64) usage.ru_stime.tv_usec;
  /* Rounded up: the limit counts whole seconds, and a call gets all of its
   * own. */
  return (us + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC;
}

/* The CPU limit, counted from now. A one-shot worker's hard limit is a
 * second later (the kernel's SIGKILL for one that catches SIGXCPU); a
 * pool worker keeps the hard limit it has, so that the soft one can move
 * on at the next call. */
static gboolean
set_cpu_limit (GError **error)
{
  struct rlimit limit;
  guint64 soft = cpu_seconds_used () + cpu_limit;

  if (getrlimit (RLIMIT_CPU, &limit) < 0)
    limit.rlim_max = RLIM_INFINITY;
  if (!cpu_limit_per_call)
    limit.rlim_max = MIN ((guint64) limit.rlim_max, soft + 1);
  limit.rlim_cur = MIN ((guint64) limit.rlim_max, soft);
  if (setrlimit (RLIMIT_CPU, &limit) < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   _("the CPU time limit of %u s could not be set: %s"), cpu_limit,
                   g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}

void
arip_sandbox_begin_call (void)
{
  if (cpu_limit > 0 && cpu_limit_per_call)
    set_cpu_limit (NULL);
}

static void
apply_rlimits (GVariantIter      *limits,
               AripSandboxReport *report)
{
  g_autoptr(GError) error = NULL;
  gint32 resource;
  guint64 soft, hard;

  while (g_variant_iter_next (limits, "(itt)", &resource, &soft, &hard))
    {
      struct rlimit limit = { to_rlim (soft), to_rlim (hard) };

      if (setrlimit (resource, &limit) < 0)
        {
          int saved_errno = errno;
          const char *name = rlimit_name (resource);
          g_autofree char *number = g_strdup_printf ("%d", resource);

          problem (report, _("the resource limit %s could not be set: %s"),
                   name != NULL ? name : number, g_strerror (saved_errno));
          report->refused = TRUE;
        }
    }

  if (cpu_limit > 0 && !set_cpu_limit (&error))
    {
      problem (report, "%s", error->message);
      report->refused = TRUE;
    }
}

/* ---------------------------------------------------------------------- */
/* The pieces of the sandbox                                              */

static guint
count_threads (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  guint n = 0;

  if (dir == NULL)
    return 1;
  while (g_dir_read_name (dir) != NULL)
    n++;
  return MAX (n, 1);
}

static gboolean
write_file (const char *path,
            const char *text)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);
  gboolean ok;

  if (fd < 0)
    return FALSE;
  ok = write (fd, text, strlen (text)) == (ssize_t) strlen (text);
  close (fd);
  return ok;
}

/* A network namespace of its own, with nothing in it. With the privilege
 * to make one, directly; without, inside a user namespace of its own in
 * which its user and group map to themselves. */
static gboolean
enter_empty_network (AripSandboxReport *report)
{
  uid_t uid = geteuid ();
  gid_t gid = getegid ();
  char map[64];
  int direct_errno;

  if (unshare (CLONE_NEWNET) == 0)
    return TRUE;
  direct_errno = errno;

  if (unshare (CLONE_NEWUSER | CLONE_NEWNET) < 0)
    {
      int user_errno = errno;

      problem (report, _("no network: a network namespace could not be made (%s), nor a user "
                         "namespace to make one in (%s)%s"),
               g_strerror (direct_errno), g_strerror (user_errno),
               user_errno == EINVAL && count_threads () > 1
                 ? _(": the worker runs more than one thread") : "");
      return FALSE;
    }

  /* Without the maps its files would look owned by nobody; the kernel
   * still checks access as the real user either way. */
  write_file ("/proc/self/setgroups", "deny");
  g_snprintf (map, sizeof map, "%u %u 1", (unsigned) uid, (unsigned) uid);
  write_file ("/proc/self/uid_map", map);
  g_snprintf (map, sizeof map, "%u %u 1", (unsigned) gid, (unsigned) gid);
  write_file ("/proc/self/gid_map", map);
  return TRUE;
}

static guint64
landlock_rights (int abi)
{
  guint64 rights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                   LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
                   LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                   LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
                   LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
                   LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
                   LANDLOCK_ACCESS_FS_MAKE_SYM;

  if (abi >= 2)
    rights |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3)
    rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5)
    rights |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return rights;
}

#define READ_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | \
                     LANDLOCK_ACCESS_FS_READ_DIR)
/* The rights that mean anything on a file that is not a directory. */
#define FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
                     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
                     LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* FALSE (with errno) only for a path that exists and could not be added. */
static gboolean
allow_beneath (int         ruleset,
               guint64     handled,
               const char *path,
               gboolean    writable,
               gboolean   *out_missing)
{
  struct landlock_path_beneath_attr rule = { 0 };
  struct stat st;
  int fd = open (path, O_PATH | O_CLOEXEC);
  int saved_errno;
  gboolean ok;

  *out_missing = fd < 0;
  if (fd < 0)
    return TRUE;
  rule.allowed_access = (writable ? handled : READ_RIGHTS) & handled;
  if (fstat (fd, &st) == 0 && !S_ISDIR (st.st_mode))
    rule.allowed_access &= FILE_RIGHTS;
  rule.parent_fd = fd;
  ok = syscall (SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) == 0;
  saved_errno = errno;
  close (fd);
  errno = saved_errno;
  return ok;
}

static void
allow_directory_of (int         ruleset,
                    guint64     handled,
                    const char *file)
{
  g_autofree char *dir = NULL;
  gboolean missing;

  if (file == NULL || !g_file_test (file, G_FILE_TEST_IS_REGULAR))
    return;
  dir = g_path_get_dirname (file);
  allow_beneath (ruleset, handled, dir, FALSE, &missing);
}

static void
allow_search_path (int         ruleset,
                   guint64     handled,
                   const char *variable)
{
  const char *value = g_getenv (variable);
  g_auto(GStrv) dirs = NULL;
  gboolean missing;

  if (value == NULL)
    return;
  dirs = g_strsplit (value, ":", -1);
  for (guint i = 0; dirs[i] != NULL; i++)
    if (dirs[i][0] != '\0')
      allow_beneath (ruleset, handled, dirs[i], FALSE, &missing);
}

/* What any program needs to go on running, read-only: the system's files
 * (not all of /etc: only what the C library, GLib and the interpreters
 * read there), its own process in /proc, the program, and where its loader
 * and interpreter look. The harmless devices read-write. */
static void
allow_runtime (int      ruleset,
               guint64  handled)
{
  static const char * const system_dirs[] = {
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
    "/etc/timezone", "/etc/locale.alias", "/etc/locale.conf", "/etc/nsswitch.conf",
    "/etc/passwd", "/etc/group", "/etc/host.conf", "/etc/hosts", "/etc/resolv.conf",
    "/etc/gai.conf", "/etc/ssl", "/etc/ca-certificates", "/etc/fonts", "/etc/mime.types",
    "/etc/xdg", "/etc/alternatives", "/etc/gtk-3.0", "/etc/gtk-4.0",
    "/proc/self", "/sys/devices/system/cpu",
  };
  static const char * const devices[] = {
    "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
  };
  static const char * const search_paths[] = {
    "LD_LIBRARY_PATH", "GI_TYPELIB_PATH", "PYTHONPATH", "GJS_PATH",
  };
  g_autoptr(GDir) etc = NULL;
  g_autofree char *exe = NULL;
  const char * const *argv;
  const char *name;
  gboolean missing;

  for (guint i = 0; i < G_N_ELEMENTS (system_dirs); i++)
    allow_beneath (ruleset, handled, system_dirs[i], FALSE, &missing);
  for (guint i = 0; i < G_N_ELEMENTS (devices); i++)
    allow_beneath (ruleset, handled, devices[i], TRUE, &missing);
  for (guint i = 0; i < G_N_ELEMENTS (search_paths); i++)
    allow_search_path (ruleset, handled, search_paths[i]);

  /* Python's own configuration: /etc/python3, /etc/python3.11. */
  etc = g_dir_open ("/etc", 0, NULL);
  while (etc != NULL && (name = g_dir_read_name (etc)) != NULL)
    if (g_str_has_prefix (name, "python3"))
      {
        g_autofree char *path = g_build_filename ("/etc", name, NULL);

        allow_beneath (ruleset, handled, path, FALSE, &missing);
      }

  /* The program, and the script an interpreter runs. */
  exe = g_file_read_link ("/proc/self/exe", NULL);
  allow_directory_of (ruleset, handled, exe);
  argv = arip_worker_get_default_argv ();
  for (guint i = 0; argv != NULL && argv[i] != NULL && i < 3; i++)
    allow_directory_of (ruleset, handled, argv[i]);
}

static gboolean
restrict_filesystem (GVariantIter      *paths,
                     AripSandboxReport *report)
{
  struct landlock_ruleset_attr attr = { 0 };
  g_autofree char *path = NULL;
  gboolean writable, missing;
  int abi, ruleset;

  abi = (int) syscall (SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 1)
    {
      int saved_errno = errno;

      problem (report, _("restricted file system: this kernel does not offer Landlock (%s)"),
               saved_errno == EOPNOTSUPP ? _("it is built in but not enabled at boot")
                                         : g_strerror (saved_errno));
      return FALSE;
    }

  attr.handled_access_fs = landlock_rights (abi);
  ruleset = (int) syscall (SYS_landlock_create_ruleset, &attr, sizeof attr.handled_access_fs, 0);
  if (ruleset < 0)
    {
      int saved_errno = errno;

      problem (report, _("restricted file system: a Landlock rule set could not be made: %s"),
               g_strerror (saved_errno));
      return FALSE;
    }

  allow_runtime (ruleset, attr.handled_access_fs);
  while (g_variant_iter_next (paths, "(^ayb)", &path, &writable))
    {
      if (!allow_beneath (ruleset, attr.handled_access_fs, path, writable, &missing))
        {
          int saved_errno = errno;

          problem (report, _("restricted file system: the allowed path “%s” could not be "
                             "added: %s"), path, g_strerror (saved_errno));
        }
      else if (missing)
        problem (report, _("restricted file system: the allowed path “%s” does not exist"),
                 path);
      g_clear_pointer (&path, g_free);
    }

  if (syscall (SYS_landlock_restrict_self, ruleset, 0) < 0)
    {
      int saved_errno = errno;

      close (ruleset);
      problem (report, _("restricted file system: Landlock refused to restrict the worker: %s"),
               g_strerror (saved_errno));
      return FALSE;
    }
  close (ruleset);
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* seccomp                                                                */

typedef struct {
  long        nr;
  const char *name;
} BlockedCall;

/* Filled before the filter is loaded, read by the crash handler. */
static BlockedCall blocked[96];
static guint n_blocked;

const char *
arip_sandbox_blocked_syscall_name (long nr)
{
  for (guint i = 0; i < n_blocked; i++)
    if (blocked[i].nr == nr)
      return blocked[i].name;
  return NULL;
}

#ifndef HAVE_LIBSECCOMP
void
arip_sandbox_prepare (void)
{
}
#endif

#ifdef HAVE_LIBSECCOMP
static void
note_blocked (long        nr,
              const char *name)
{
  if (n_blocked < G_N_ELEMENTS (blocked) && arip_sandbox_blocked_syscall_name (nr) == NULL)
    blocked[n_blocked++] = (BlockedCall) { nr, name };
}

/* The filter compiled once in the fork server, for its workers to load
 * as it is: compiling it costs a worker ~0.2 ms. */
static struct sock_filter *prebuilt;
static gushort n_prebuilt;

static gboolean build_filter (scmp_filter_ctx ctx);

void
arip_sandbox_prepare (void)
{
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
  g_autofree struct sock_filter *code = NULL;
  struct stat st;
  int fd = -1;

  if (ctx == NULL)
    return;
  fd = memfd_create ("arip-seccomp", MFD_CLOEXEC);
  if (fd >= 0 && build_filter (ctx) && seccomp_export_bpf (ctx, fd) == 0 &&
      fstat (fd, &st) == 0 && st.st_size > 0 && st.st_size % sizeof (struct sock_filter) == 0 &&
      st.st_size / sizeof (struct sock_filter) <= G_MAXUSHORT)
    {
      code = g_malloc (st.st_size);
      if (pread (fd, code, st.st_size, 0) == st.st_size)
        {
          n_prebuilt = (gushort) (st.st_size / sizeof (struct sock_filter));
          prebuilt = g_steal_pointer (&code);
        }
    }
  if (prebuilt == NULL)
    n_blocked = 0;
  if (fd >= 0)
    close (fd);
  seccomp_release (ctx);
}

static gboolean
load_prebuilt (void)
{
  struct sock_fprog program = { n_prebuilt, prebuilt };

  /* No new privileges is set already; every thread, as seccomp_load()
   * with TSYNC does. */
  return syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program) == 0;
}

/* The rules, in @ctx; FALSE if libseccomp refused one. Fills the table of
 * names the crash report uses. */
static gboolean
build_filter (scmp_filter_ctx ctx)
{
  /* In the spirit of Flatpak's list: what lets a process reach beyond
   * itself (other processes' memory, the kernel's keyrings, mounts and
   * namespaces, modules, the clock, the terminal's input queue) or widens
   * the kernel's attack surface for no use a worker has. */
  static const char * const denied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "unshare", "setns",
    "keyctl", "add_key", "request_key",
    "perf_event_open", "bpf", "userfaultfd", "lookup_dcookie",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "syslog", "uselib", "acct", "quotactl", "quotactl_fd", "swapon", "swapoff", "reboot",
    "open_by_handle_at", "name_to_handle_at",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "iopl", "ioperm", "move_pages", "migrate_pages",
  };
  int rc = 0;

  n_blocked = 0;
  for (guint i = 0; i < G_N_ELEMENTS (denied) && rc == 0; i++)
    {
      int nr = seccomp_syscall_resolve_name (denied[i]);

      if (nr < 0)
        continue;   /* not a call of this architecture */
      rc = seccomp_rule_add (ctx, SCMP_ACT_TRAP, nr, 0);
      note_blocked (nr, denied[i]);
    }
  /* A new user namespace by clone(); clone3() passes its flags in memory
   * the filter cannot read, so it is not there at all (the C library
   * falls back on clone()). Faking terminal input. Other personalities
   * than Linux's fail, as in Flatpak. */
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_TRAP, SCMP_SYS (clone), 1,
                           SCMP_A0 (SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
  note_blocked (SCMP_SYS (clone), "clone (a new user namespace)");
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (ENOSYS), SCMP_SYS (clone3), 0);
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_TRAP, SCMP_SYS (ioctl), 1,
                           SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xffffffffu, (scmp_datum_t) TIOCSTI));
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_TRAP, SCMP_SYS (ioctl), 1,
                           SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xffffffffu, (scmp_datum_t) TIOCLINUX));
  note_blocked (SCMP_SYS (ioctl), "ioctl (TIOCSTI or TIOCLINUX)");
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EINVAL), SCMP_SYS (personality), 1,
                           SCMP_A0 (SCMP_CMP_NE, 0 /* PER_LINUX */));
  /* Every thread, those already running included. */
  if (rc == 0)
    rc = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  return rc == 0;
}

static gboolean
install_seccomp (AripSandboxReport *report)
{
  scmp_filter_ctx ctx;
  int rc = -EINVAL;

  if (prebuilt != NULL && load_prebuilt ())
    return TRUE;

  ctx = seccomp_init (SCMP_ACT_ALLOW);
  if (ctx == NULL)
    {
      problem (report, _("seccomp: the filter could not be made"));
      return FALSE;
    }
  if (build_filter (ctx))
    rc = seccomp_load (ctx);
  seccomp_release (ctx);

  if (rc != 0)
    {
      n_blocked = 0;
      problem (report, _("seccomp: the filter could not be loaded: %s"), g_strerror (-rc));
      return FALSE;
    }
  return TRUE;
}
#endif

/* ---------------------------------------------------------------------- */

void
arip_sandbox_apply (gboolean           pool_worker,
                    AripSandboxReport *report)
{
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariantIter) limits = NULL;
  g_autoptr(GVariantIter) paths = NULL;
  g_autoptr(GError) error = NULL;
  const char *env = g_getenv (ARIP_ISOLATION_ENV);
  guint32 flags, policy, seconds;
  AripSandboxFlags want;

  memset (report, 0, sizeof *report);
  if (env == NULL)
    return;
  report->asked = TRUE;
  report->problems = g_ptr_array_new_with_free_func (g_free);

  value = g_variant_parse (G_VARIANT_TYPE (ARIP_ISOLATION_TYPE), env, NULL, NULL, &error);
  g_unsetenv (ARIP_ISOLATION_ENV);
  if (value == NULL)
    {
      problem (report, _("its limits and sandbox could not be read: %s"), error->message);
      report->refused = TRUE;
      return;
    }
  g_variant_get (value, "(a(itt)uuua(ayb))", &limits, &seconds, &flags, &policy, &paths);
  want = report->wanted = (AripSandboxFlags) flags;
  report->policy = (AripSandboxPolicy) policy;

  cpu_limit = seconds;
  cpu_limit_per_call = pool_worker;
  apply_rlimits (limits, report);

  /* The environment was cleared by the parent, which built it. */
  report->applied |= want & ARIP_SANDBOX_CLEAR_ENV;

  if ((want & ARIP_SANDBOX_NO_NETWORK) && enter_empty_network (report))
    report->applied |= ARIP_SANDBOX_NO_NETWORK;

  /* Landlock and seccomp want it too, without the privilege to go
   * without. */
  if (want & (ARIP_SANDBOX_NO_NEW_PRIVS | ARIP_SANDBOX_RESTRICT_FILESYSTEM | ARIP_SANDBOX_SECCOMP))
    {
      if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
        report->applied |= want & ARIP_SANDBOX_NO_NEW_PRIVS;
      else if (want & ARIP_SANDBOX_NO_NEW_PRIVS)
        {
          int saved_errno = errno;

          problem (report, _("no new privileges: %s"), g_strerror (saved_errno));
        }
    }

  if ((want & ARIP_SANDBOX_RESTRICT_FILESYSTEM) && restrict_filesystem (paths, report))
    report->applied |= ARIP_SANDBOX_RESTRICT_FILESYSTEM;

  if (want & ARIP_SANDBOX_SECCOMP)
    {
#ifdef HAVE_LIBSECCOMP
      if (install_seccomp (report))
        report->applied |= ARIP_SANDBOX_SECCOMP;
#else
      problem (report, _("seccomp: this arip was built without libseccomp"));
#endif
    }

  if (report->policy == ARIP_SANDBOX_POLICY_REQUIRED && report->problems->len > 0)
    report->refused = TRUE;
}
