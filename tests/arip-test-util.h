/* arip-test-util.h: helpers shared by the GTest programs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <arip.h>

G_BEGIN_DECLS

/* How long any single wait in a test may take before the test fails: 30 s,
 * times ARIP_TEST_TIMEOUT_MULTIPLIER when it is set (build-aux/dev valgrind
 * sets it: the parent runs tens of times slower there). This is a guard
 * against hangs, not a measurement. */
#define ARIP_TEST_TIMEOUT_SECONDS ((gint) (30 * arip_test_timeout_multiplier ()))

guint         arip_test_timeout_multiplier (void);

/* Registered by several test programs: answers with its arguments. */
void          arip_test_fn_echo          (AripCall      *call,
                                          GVariant      *args,
                                          gpointer       user_data);
/* exit(), except under AddressSanitizer: LeakSanitizer runs at exit() and
 * replaces the status when anything is still allocated (a worker's own
 * frames are), so leave without it, with the status the test chose. */
G_GNUC_NORETURN
void          arip_test_exit_now         (int            status);
/* The parent pid of @pid from /proc, or 0 if it is gone. */
GPid          arip_test_read_ppid        (GPid           pid);

/* Iterates the default main context until @cond holds; fails the test
 * program if it does not within ARIP_TEST_TIMEOUT_SECONDS. */
#define arip_test_wait_until(cond)                                           \
  G_STMT_START {                                                             \
    gboolean arip_test_timed_out_ = FALSE;                                   \
    guint arip_test_guard_id_ =                                              \
      g_timeout_add_seconds (ARIP_TEST_TIMEOUT_SECONDS,                      \
                             arip_test_set_flag, &arip_test_timed_out_);     \
    /* Wake up now and then: some conditions are not events (a file, a     \
     * pid) and must be polled. */                                          \
    guint arip_test_tick_id_ = g_timeout_add (10, arip_test_tick, NULL);     \
    while (!(cond) && !arip_test_timed_out_)                                 \
      g_main_context_iteration (NULL, TRUE);                                 \
    if (arip_test_timed_out_)                                                \
      g_error ("%s:%d: timed out after %d s waiting for: %s",                \
               __FILE__, __LINE__, ARIP_TEST_TIMEOUT_SECONDS, #cond);        \
    g_source_remove (arip_test_tick_id_);                                    \
    g_source_remove (arip_test_guard_id_);                                   \
  } G_STMT_END

gboolean      arip_test_set_flag         (gpointer       data);
gboolean      arip_test_tick             (gpointer       data);

/* A GAsyncReadyCallback that stores a reference to the result in
 * *(GAsyncResult **) user_data. */
void          arip_test_store_result     (GObject       *source,
                                          GAsyncResult  *result,
                                          gpointer       user_data);

/* Iterates the default main context for about @ms milliseconds: lets
 * pending events happen, asserts nothing about time. */
void          arip_test_iterate_for      (guint          ms);

/* Helpers that run the async API on the default main context. */
gboolean      arip_test_start            (AripProcess   *process,
                                          GError       **error);
GVariant     *arip_test_wait             (AripProcess   *process,
                                          GError       **error);
/* Starts @process and waits for its outcome. */
GVariant     *arip_test_run_process      (AripProcess   *process,
                                          GError       **error);
gboolean      arip_test_wait_for_state   (AripProcess   *process,
                                          AripState      state,
                                          GError       **error);
gboolean      arip_test_stop             (AripProcess   *process,
                                          GError       **error);
GVariant     *arip_test_run              (const char    *function,
                                          GVariant      *args,
                                          GCancellable  *cancellable,
                                          GError       **error);
GVariant     *arip_test_launcher_run     (AripLauncher  *launcher,
                                          const char    *function,
                                          GVariant      *args,
                                          GCancellable  *cancellable,
                                          GError       **error);

/* TRUE once no process with @pid exists (kill (pid, 0) fails with ESRCH). */
gboolean      arip_test_pid_is_gone      (GPid           pid);
/* TRUE once no process with @pid runs: it does not exist or is a zombie
 * (for a process that is not our child: it may be reparented to an init
 * that does not reap). */
gboolean      arip_test_pid_is_dead      (GPid           pid);
/* Iterates the default main context until @pid is gone (reaped). */
void          arip_test_assert_pid_gone  (GPid           pid);

/* The number of entries in /proc/self/fd. */
guint         arip_test_count_fds        (void);

/* The names of the open descriptors, for a diagnostic. */
char         *arip_test_list_fds         (void);

/* The fork server of this process (a child of ours started as one), or 0. */
GPid          arip_test_fork_server_pid  (void);
/* Under ARIP_START_METHOD_FORKSERVER (the launchers' default here), runs
 * "echo" calls until one is forked by the fork server, so that counts of
 * descriptors and processes taken afterwards include it; nothing
 * otherwise. */
void          arip_test_wait_for_fork_server (void);
/* Processes started for us that are still there (zombies included): our
 * children and the fork server's, not the fork server itself; each is
 * added to @list (nullable) as " PID(STATE)". */
guint         arip_test_count_workers    (GString       *list);
/* Makes the workers of @launcher fake ones: @variable=@mode in their
 * environment. A fake takes over before arip_init(), as another program
 * would, so it is spawned (a fork server's workers are past it). */
void          arip_test_use_fake_worker  (AripLauncher  *launcher,
                                          const char    *variable,
                                          const char    *mode);

/* Asserts that @actual equals @expected (which is sunk and freed). */
void          arip_test_assert_variant_impl (const char *file,
                                             int         line,
                                             GVariant   *actual,
                                             GVariant   *expected);
#define arip_test_assert_variant(actual, expected) \
  arip_test_assert_variant_impl (__FILE__, __LINE__, (actual), (expected))

G_END_DECLS
