/* arip-shared-private.h: the state behind shared objects, and how every
 * process that holds one reaches it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The process that creates a shared object holds its state (an
 * AripSharedState) in its broker; every operation, its own and those of
 * its children, runs there, one at a time under the broker's lock. A
 * child reaches the broker over one connection per process (an AF_UNIX
 * socketpair sent to it once, with the first call or message that holds
 * a handle): it sends REQUEST frames and gets a REPLY or REPLY_ERROR
 * for each, and EVENT frames for the signals of the objects it opened.
 * The connection's end is how the broker learns of a child's death: a
 * lock it held is freed, semaphore units it took are given back, the
 * barriers it waited at break, an item sent to it that it did not
 * acknowledge goes back to the front of its queue.
 *
 * An operation that cannot complete at once is a parked AripWaiter, in
 * the object's own lists: no thread waits for it. A waiter belongs to a
 * holder: this process (for calls made here: then it completes a GTask
 * or wakes a thread in a _sync call) or one connection (then its
 * completion is a frame).
 */
#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "arip-channel-private.h"
#include "arip-shared.h"

G_BEGIN_DECLS

#define ARIP_SHARED_PROTOCOL_VERSION 1
/* A handle: the type's name, the object's number, its key. */
#define ARIP_SHARED_HANDLE_TYPE_STRING "(stt)"
/* Posts a child has in flight at most, over all its objects (see
 * arip_shared_post()). */
#define ARIP_SHARED_POST_WINDOW 64u
/* Posts in a row the parent takes without answering: an answer to any
 * request answers the posts sent before it (see arip_waiter_return_post()). */
#define ARIP_SHARED_QUIET_POSTS 16u
/* What a connection may have queued for a peer that does not read. */
#define ARIP_SHARED_MAX_QUEUED (64u * 1024u * 1024u)

typedef enum {
  /* Any object */
  ARIP_SHARED_OP_OPEN = 1,        /* (t) key → (sv) type, what opening needs */
  ARIP_SHARED_OP_CANCEL,          /* (u) serial of a parked request: no reply */
  ARIP_SHARED_OP_ACK,             /* (u) serial of a reply that asked for one: no reply */
  ARIP_SHARED_OP_SYNC,            /* () → ()         every earlier request was answered */

  ARIP_QUEUE_OP_PUT = 16,         /* (v) → (u) room  waits while full */
  ARIP_QUEUE_OP_TRY_PUT,          /* (v) → (b) */
  ARIP_QUEUE_OP_GET,              /* () → (v)        waits while empty */
  ARIP_QUEUE_OP_TRY_GET,          /* () → (mv) */
  ARIP_QUEUE_OP_CLOSE,            /* () → () */
  ARIP_QUEUE_OP_LENGTH,           /* () → (u) */
  ARIP_QUEUE_OP_UNGET,            /* (v) → ()        to the front, full or closed */
  ARIP_QUEUE_OP_POST,             /* (v) → (u) room  a child's put that did not wait: in
                                   * even if full (the child believed there was room);
                                   * answered only now and then, errors at once */

  ARIP_LOCK_OP_ACQUIRE = 32,      /* () → (b) abandoned */
  ARIP_LOCK_OP_TRY_ACQUIRE,       /* () → (bb) acquired, abandoned */
  ARIP_LOCK_OP_RELEASE,           /* () → () */

  ARIP_EVENT_OP_SET = 48,
  ARIP_EVENT_OP_CLEAR,
  ARIP_EVENT_OP_IS_SET,           /* () → (b) */
  ARIP_EVENT_OP_WAIT,             /* () → () */

  ARIP_SEMAPHORE_OP_ACQUIRE = 64, /* () → () */
  ARIP_SEMAPHORE_OP_TRY_ACQUIRE,  /* () → (b) */
  ARIP_SEMAPHORE_OP_RELEASE,      /* () → () */
  ARIP_SEMAPHORE_OP_VALUE,        /* () → (u) */

  ARIP_CONDITION_OP_WAIT = 80,    /* () → () */
  ARIP_CONDITION_OP_NOTIFY,       /* (u) n, G_MAXUINT32: all → () */

  ARIP_BARRIER_OP_WAIT = 96,      /* () → (u) index */
  ARIP_BARRIER_OP_ABORT,
  ARIP_BARRIER_OP_RESET,
  ARIP_BARRIER_OP_N_WAITING,      /* () → (u) */
  ARIP_BARRIER_OP_IS_BROKEN,      /* () → (b) */

  ARIP_DICT_OP_SET = 112,         /* (sv) → () */
  ARIP_DICT_OP_LOOKUP,            /* (s) → (mv) */
  ARIP_DICT_OP_REMOVE,            /* (s) → (b) */
  ARIP_DICT_OP_KEYS,              /* () → (as) */
  ARIP_DICT_OP_REPLACE,           /* (smvv) → (b) */
} AripSharedOp;

/* What a completed GTask of a shared object's operation holds. */
typedef struct {
  GVariant    *value;
  GUnixFDList *fds;
} AripSharedReply;

void          arip_shared_reply_free     (gpointer data);

typedef struct _AripSharedState AripSharedState;
typedef struct _AripWaiter      AripWaiter;
typedef struct _AripHolder      AripHolder;

typedef struct {
  GType       (*get_type)    (void);
  /* Runs @waiter's operation: completes it with arip_waiter_return*() or
   * parks it in the state's own lists. */
  void        (*run)         (AripSharedState *state,
                              AripWaiter      *waiter);
  /* A parked @waiter is cancelled (or its holder is @gone): TRUE if it was
   * taken out of the lists (the broker ends it); FALSE if the type ends
   * it itself later (a condition's waiter takes its lock back first).
   * When @gone, it must be taken out. */
  gboolean    (*withdraw)    (AripSharedState *state,
                              AripWaiter      *waiter,
                              gboolean         gone);
  /* @holder is gone: what it held goes back. (Nullable.) */
  void        (*holder_gone) (AripSharedState *state,
                              AripHolder      *holder);
  /* An item sent with a reply that asked to be acknowledged was not: its
   * holder died first. (Nullable.) */
  void        (*give_back)   (AripSharedState *state,
                              GVariant        *value,
                              GUnixFDList     *fds);
  /* What a process that opens it needs to know, with descriptors appended
   * to @fds. */
  GVariant   *(*describe)    (AripSharedState *state,
                              GUnixFDList     *fds);
  void        (*finalize)    (AripSharedState *state);

  /* In every process that holds the object, in its context: what
   * arip_shared_state_emit() sent. (Nullable.) */
  void        (*event)       (AripShared      *object,
                              const char      *what,
                              GVariant        *value);
  /* In a process that opens the object: what describe() said. */
  gboolean    (*opened)      (AripShared      *object,
                              GVariant        *info,
                              GUnixFDList     *fds,
                              GError         **error);
} AripSharedStateClass;

struct _AripSharedState {
  const AripSharedStateClass *klass;
  guint64        id;
  guint64        key;
  gint           ref_count;     /* under the broker's lock */
  GPtrArray     *openers;       /* AripHolder*, unowned: connections that opened it */
  GWeakRef       object;        /* the AripShared in this process */
  GMainContext  *context;       /* where that object's signals are emitted */
};

struct _AripWaiter {
  AripSharedState *state;
  AripHolder      *holder;
  guint            op;
  GVariant        *arg;         /* the operation's argument, of its type */
  GUnixFDList     *fds;         /* descriptors that came with it, or NULL */
  GList            link;        /* in a list, while parked */
  GQueue          *parked_in;   /* that list */
  gpointer         data;        /* for the type */
  guint32          serial;      /* a connection's request */
  gboolean         parked;

  /* This process's own waiters: */
  GTask           *task;        /* an _async call */
  gboolean         sync;        /* a _sync call: the thread waits for done */
  gboolean         done;
  GCancellable    *cancellable;
  gulong           cancel_id;
  GVariant        *reply;
  GUnixFDList     *reply_fds;
  GError          *error;
};

/* The context of the thread that reads the children's connections
 * (started if need be); unowned. */
GMainContext *arip_broker_get_context    (void);
void          arip_broker_lock           (void);
/* Ends the lock, then completes what was completed under it. */
void          arip_broker_unlock         (void);

/* A new state of @size bytes (the type's struct, which begins with an
 * AripSharedState), with one reference, for @object. */
gpointer      arip_shared_state_new      (const AripSharedStateClass *klass,
                                          gsize                       size,
                                          AripShared                 *object);
/* Under the broker's lock. */
void          arip_shared_state_ref      (AripSharedState *state);
void          arip_shared_state_unref    (AripSharedState *state);
/* Emits @what (a signal of the object, with @value) in every process that
 * holds the object. Under the broker's lock. */
void          arip_shared_state_emit     (AripSharedState *state,
                                          const char      *what,
                                          GVariant        *value);

/* The holder is this process. */
gboolean      arip_holder_is_local       (AripHolder      *holder);
/* Two waiters of the same holder. */
gboolean      arip_holder_equal          (AripHolder      *a,
                                          AripHolder      *b);

/* withdraw() for a type whose waiters only wait in one list. */
gboolean      arip_waiter_withdraw_default (AripSharedState *state,
                                            AripWaiter      *waiter,
                                            gboolean         gone);
/* Parks @waiter at the tail of @queue. */
void          arip_waiter_park           (AripWaiter      *waiter,
                                          GQueue          *queue);
/* Completes @waiter, taking it out of the list it is parked in, if any
 * (@queue is that list, or NULL). @value is sunk; @fds (nullable) is taken. The waiter is
 * freed. */
void          arip_waiter_return         (AripWaiter      *waiter,
                                          GQueue          *queue,
                                          GVariant        *value,
                                          GUnixFDList     *fds);
/* Completes a post that went in (not parked; @room its answer): a
 * child's connection is answered only for every ARIP_SHARED_QUIET_POSTS-th
 * post in a row, since an answer to any later request says the post was
 * taken. Saves the parent a write and the child a read and a wake-up per
 * item. */
void          arip_waiter_return_post    (AripWaiter      *waiter,
                                          guint            room);
/* The same for an item that must be acknowledged: if its holder dies
 * before, the state's give_back() has it back. */
void          arip_waiter_return_item    (AripWaiter      *waiter,
                                          GQueue          *queue,
                                          GVariant        *value,
                                          GUnixFDList     *fds);
void          arip_waiter_return_error   (AripWaiter      *waiter,
                                          GQueue          *queue,
                                          GQuark           domain,
                                          gint             code,
                                          const char      *format,
                                          ...) G_GNUC_PRINTF (5, 6);

/* A new connection for a child: its end (the caller's, close-on-exec) in
 * *out_fd, and in *out_ack_fd the page it acknowledges what it receives
 * in (or -1: it sends ACK frames); the broker keeps the other end. */
AripHolder   *arip_broker_connect        (gint            *out_fd,
                                          gint            *out_ack_fd,
                                          GError         **error);
/* The child is gone: what it held goes back now, whatever is still in
 * flight on the connection. Consumes the reference. */
void          arip_holder_close          (AripHolder      *holder);

/* This process's operations on its own objects (arip-broker.c). */
void          arip_broker_run_async      (AripSharedState *state,
                                          guint            op,
                                          GVariant        *arg,
                                          GUnixFDList     *fds,
                                          GTask           *task);
GVariant     *arip_broker_run_sync       (AripSharedState *state,
                                          guint            op,
                                          GVariant        *arg,
                                          GUnixFDList     *fds,
                                          gint             timeout_ms,
                                          GCancellable    *cancellable,
                                          GUnixFDList    **out_fds,
                                          GError         **error);
GVariant     *arip_broker_finish         (GTask           *task,
                                          GUnixFDList    **out_fds,
                                          GError         **error);
/* Checks that @waiter's argument is of @type; if not, ends it with
 * ARIP_ERROR_INVALID_DATA and returns FALSE. */
gboolean      arip_waiter_check_arg      (AripWaiter      *waiter,
                                          const char      *type);

/* TRUE if @value may hold a handle somewhere inside. */
gboolean      arip_shared_value_has_handles (GVariant     *value);
/* In a worker: the connection the parent sent, and the page to count
 * what it receives in (-1: none, ACK frames then); @context is where its
 * events and asynchronous replies are handled. Takes both descriptors. */
void          arip_shared_client_connect (gint             fd,
                                          gint             ack_fd,
                                          GMainContext    *context);

/* The operations of a shared object, wherever its state is. */
void          arip_shared_request_async  (AripShared         *self,
                                          guint               op,
                                          GVariant           *arg,
                                          GUnixFDList        *fds,
                                          GCancellable       *cancellable,
                                          GAsyncReadyCallback callback,
                                          gpointer            user_data,
                                          gpointer            source_tag);
GVariant     *arip_shared_request_finish (AripShared         *self,
                                          GAsyncResult       *result,
                                          GUnixFDList       **out_fds,
                                          GError            **error);
/* @timeout_ms -1: no limit; an operation that does not wait ignores it. */
GVariant     *arip_shared_request_sync   (AripShared         *self,
                                          guint               op,
                                          GVariant           *arg,
                                          GUnixFDList        *fds,
                                          gint                timeout_ms,
                                          GCancellable       *cancellable,
                                          GUnixFDList       **out_fds,
                                          GError            **error);
/* For operations that never wait and cannot fail in this process: the
 * reply, or NULL after a warning (a child whose parent is gone). */
GVariant     *arip_shared_request_now    (AripShared         *self,
                                          guint               op,
                                          GVariant           *arg);
/* The same for an operation without argument that answers "(b)" or
 * "(u)": the answer, or FALSE / 0 after the warning. */
gboolean      arip_shared_request_boolean (AripShared        *self,
                                           guint              op);
guint         arip_shared_request_uint    (AripShared        *self,
                                           guint              op);

/* Posting: a child's request that does not wait for its reply (a put
 * into a queue with room). Requests on the connection are answered in
 * order, so whatever the child asks afterwards sees it done. @credit is
 * how many more may go before a reply says there is room again
 * (G_MAXUINT: no limit); each post spends one. */
void          arip_shared_set_credit     (AripShared         *self,
                                          guint               credit);
/* TRUE if @self may post now: in a child, with credit left and no post
 * refused before. */
gboolean      arip_shared_may_post       (AripShared         *self);
/* FALSE with @error, once, if a post of @self was refused (the queue was
 * closed meanwhile): what the next request of that kind must fail with. */
gboolean      arip_shared_check_posts    (AripShared         *self,
                                          GError            **error);
/* Sends @op without waiting; consumes @arg. FALSE with @error if it could
 * not be sent. */
gboolean      arip_shared_post           (AripShared         *self,
                                          guint               op,
                                          GVariant           *arg,
                                          GUnixFDList        *fds,
                                          GError            **error);
/* In a worker, before a call's result or a message goes to the parent:
 * waits until the parent has answered every post, so that what the
 * parent learns next finds them done. */
void          arip_shared_client_drain   (void);

/* The classes, for a process that opens a handle. */
extern const AripSharedStateClass arip_queue_state_class;
extern const AripSharedStateClass arip_lock_state_class;
extern const AripSharedStateClass arip_event_state_class;
extern const AripSharedStateClass arip_semaphore_state_class;
extern const AripSharedStateClass arip_condition_state_class;
extern const AripSharedStateClass arip_barrier_state_class;
extern const AripSharedStateClass arip_shared_memory_state_class;
extern const AripSharedStateClass arip_shared_dict_state_class;

/* A lock's state, which its conditions use too (arip-lock.c). */
typedef struct {
  AripSharedState  parent;
  AripHolder      *owner;      /* unowned; NULL: free */
  gboolean         abandoned;  /* its last owner died holding it */
  GQueue           waiters;    /* to acquire it, a condition's among them */
} AripLockState;

/* Under the broker's lock: the lock goes to the next waiter, if any. */
void          arip_lock_state_release    (AripLockState   *lock);
/* A condition's @waiter takes @lock back: at once if it is free, or in
 * turn. It completes then, successfully or with the error in
 * waiter->data (a GError *), if any. */
void          arip_lock_state_take_back  (AripLockState   *lock,
                                          AripWaiter      *waiter);

/* This process's own object with that number and key, or NULL. */
AripShared   *arip_broker_lookup         (guint64             id,
                                          guint64             key);

/* The state, in the process that created the object; NULL in others. */
AripSharedState *arip_shared_get_state   (AripShared         *self);
void          arip_shared_set_state      (AripShared         *self,
                                          AripSharedState    *state);

G_END_DECLS
