/* arip-child-private.h: the parent's side of one worker process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "arip-channel-private.h"
#include "arip-launcher.h"
#include "arip-limiter-private.h"
#include "arip-signals-private.h"

G_BEGIN_DECLS

typedef struct _AripChild AripChild;

typedef enum {
  ARIP_CHILD_ONE_SHOT,   /* serves one call, reporting its states */
  ARIP_CHILD_POOL,       /* serves calls one after the other */
} AripChildKind;

typedef struct {
  /* The worker said a valid hello. */
  void     (*ready)            (AripChild *child,
                                gpointer   user_data);
  /* Any other frame, in order; borrowed. */
  void     (*frame)            (AripChild *child,
                                AripFrame *frame,
                                gpointer   user_data);
  /* The startup timeout expired: the error to end with (NULL: a generic
   * one). The child is killed afterwards. */
  GError  *(*startup_timeout)  (AripChild *child,
                                gpointer   user_data);
  /* Once, at the end: the worker is gone (or, after arip_child_kill(),
   * known to be dying by our hand). Everything it sent before is handed
   * out first. */
  void     (*exited)           (AripChild *child,
                                gpointer   user_data);
} AripChildCallbacks;

/* Starts a worker with @launcher's settings; its callbacks run in
 * @context. @slot (nullable) is the
 * limiter slot it runs in: the child owns it and gives it back once the
 * process is reaped. The startup timeout runs until
 * arip_child_stop_startup_timer(). */
AripChild   *arip_child_new                (AripLauncher             *launcher,
                                            AripChildKind             kind,
                                            AripSlot                 *slot,
                                            GMainContext             *context,
                                            const AripChildCallbacks *callbacks,
                                            gpointer                  user_data,
                                            GError                  **error);
AripChild   *arip_child_ref                (AripChild    *self);
void         arip_child_unref              (AripChild    *self);
/* The owner goes away: no callback runs any more, and a child still
 * running is killed. */
void         arip_child_detach             (AripChild    *self);

GPid         arip_child_get_pid            (AripChild    *self);
/* How it came to be (a fork server that was not ready yet: spawned). */
AripStartMethod arip_child_get_start_method (AripChild    *self);
/* The function it runs, which its messages name after its pid
 * ("running “fib”"); NULL for none. */
void         arip_child_set_function       (AripChild    *self,
                                            const char   *function);

/* Queues an encoded frame (consumed; NULL means too large). FALSE with
 * @error if it cannot be sent: G_IO_ERROR_CLOSED or another G_IO_ERROR
 * means the child is gone or going. */
gboolean     arip_child_send               (AripChild    *self,
                                            GBytes       *frame,
                                            GUnixFDList  *fds,
                                            GError      **error);
/* The call (@args borrowed, with @fds, nullable), or a message (@message: a full or floating
 * reference, taken): a large value goes in a sealed memfd. Errors as for
 * arip_child_send(); ARIP_ERROR ones are ours (too large, no memory), and
 * the child is fine. */
gboolean     arip_child_send_call          (AripChild    *self,
                                            const char   *function,
                                            GVariant     *args,
                                            GUnixFDList  *fds,
                                            GError      **error);
gboolean     arip_child_send_message       (AripChild    *self,
                                            GVariant     *message,
                                            GError      **error);
gsize        arip_child_get_queued_bytes   (AripChild    *self);

void         arip_child_stop_startup_timer (AripChild    *self);
/* The one call was answered: a child that does not exit soon is killed,
 * and its answer stands. */
void         arip_child_expect_exit        (AripChild    *self);
/* We are done with a pool worker: its channel closes, on which it exits;
 * one that does not is killed after a grace time. */
void         arip_child_release            (AripChild    *self);
/* Ends the child with an error of ours (consumed): the channel closes and
 * the child is killed. */
void         arip_child_fail               (AripChild    *self,
                                            GError       *error);
/* ARIP_ERROR_INVALID_DATA naming @what, then arip_child_fail(). */
void         arip_child_protocol_violation (AripChild    *self,
                                            const char   *what);
/* SIGKILL to the child and its process group. Never waits for long: the
 * exited callback runs before this returns. */
void         arip_child_kill               (AripChild    *self);
/* A signal to the child alone (not to its group); never to a reaped pid. */
void         arip_child_send_signal        (AripChild    *self,
                                            gint          signum);
/* The next step of a stop: SIGINT to the child (with @call_seq, see
 * arip_stop_step()), then SIGTERM and SIGKILL to its whole group. Returns
 * how long to wait before the next, or -1. */
gint         arip_child_stop_step          (AripChild     *self,
                                            guint32        call_seq,
                                            AripStopStage *stage,
                                            guint          interrupt_ms,
                                            guint          terminate_ms);

/* Our end of the child's stdin (0), stdout (1) or stderr (2) pipe, now
 * the caller's; -1 if there is none. */
gint         arip_child_steal_stdio        (AripChild    *self,
                                            gint          which);

/* A pool worker's slot may go to someone who waits for one. */
void         arip_child_set_idle           (AripChild    *self);
/* FALSE if the slot was taken meanwhile: the child is being killed. */
gboolean     arip_child_set_busy           (AripChild    *self);
/* The number of the last call a pool worker began (0: none, or unknown
 * where the shared page could not be made: then G_MAXUINT32). */
guint32      arip_child_get_started_call   (AripChild    *self);

/* The pieces of its sandbox the worker applied (known from before its
 * hello). */
AripSandboxFlags arip_child_get_sandbox    (AripChild    *self);

/* After the end. */
gboolean     arip_child_has_exited         (AripChild    *self);
/* The process is gone for good (waited for), its slot given back. */
gboolean     arip_child_is_reaped          (AripChild    *self);
gint         arip_child_get_wait_status    (AripChild    *self);
gboolean     arip_child_get_killed         (AripChild    *self);
gboolean     arip_child_get_lingered       (AripChild    *self);
/* Our own error (invalid data, a timeout, a failed send), or NULL. */
const GError *arip_child_get_error         (AripChild    *self);
const GString *arip_child_get_last_words   (AripChild    *self);
/* ARIP_ERROR_SIGNALED (naming the signal, with the last words) or
 * ARIP_ERROR_EXITED for a child that ended without answering. */
GError      *arip_child_exit_error_new     (AripChild    *self,
                                            const char   *function);

G_END_DECLS
