/* arip-frame-private.h: the frames of the parent <-> worker protocol
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every frame is an 8-byte header in host byte order,
 *
 *   guint32 size;    payload bytes that follow the header
 *   guint16 kind;    an AripFrameKind
 *   guint16 n_fds;   file descriptors sent with the frame (SCM_RIGHTS)
 *
 * followed by a serialized GVariant in normal form whose type is fixed by
 * the kind. File descriptors travel as ancillary data on the sendmsg() that
 * carries the frame's header; the reader queues the descriptors it receives
 * and hands each frame the number its header announces.
 */
#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

G_BEGIN_DECLS

#define ARIP_PROTOCOL_VERSION     2
#define ARIP_FRAME_HEADER_SIZE    8
/* The largest payload either side accepts. */
#define ARIP_FRAME_MAX_SIZE       (512u * 1024u * 1024u)
/* The most descriptors one frame may carry. */
#define ARIP_FRAME_MAX_FDS        64
/* The environment variable that tells a worker where its channel is:
 * "VERSION:CHANNEL_FD:CRASH_FD:PARENT_PID", then ":pool" or
 * ":pool:CONTROL_FD" for a pool worker. */
#define ARIP_WORKER_ENV           "ARIP_WORKER"

typedef enum {
  ARIP_FRAME_HELLO = 1,    /* child -> parent  (ui)   version, pid       */
  ARIP_FRAME_STATE,        /* child -> parent  (u)    AripState          */
  ARIP_FRAME_CALL,         /* parent -> child  (sv)   function, args     */
  ARIP_FRAME_RESULT,       /* child -> parent  (v)    the return value   */
  ARIP_FRAME_ERROR,        /* child -> parent  (sis)  domain, code, message */
  ARIP_FRAME_MESSAGE,      /* both ways        (v)    a user message     */
  ARIP_FRAME_PROGRESS,     /* child -> parent  (d)    0.0 .. 1.0         */
  /* The same as RESULT, MESSAGE and CALL, with the value in a sealed
   * memfd, the frame's one descriptor: its size and type travel. The
   * decoder hands them out as RESULT, MESSAGE and CALL frames. */
  ARIP_FRAME_RESULT_MEMFD, /* child -> parent  (ts)   size, type         */
  ARIP_FRAME_MESSAGE_MEMFD,/* both ways        (ts)   size, type         */
  ARIP_FRAME_CALL_MEMFD,   /* parent -> child  (sts)  function, size, type */
  /* A message that came in a memfd was handled: its sender may count its
   * bytes as gone. */
  ARIP_FRAME_CONSUMED,     /* child -> parent  (t)    bytes              */
  /* The worker's connection to the objects shared with it: the frame's
   * one descriptor (see arip-shared-private.h). Sent before the first
   * call or message that holds a shared object's handle. */
  ARIP_FRAME_SHARED_CONNECT, /* parent -> child (u)  protocol version     */
  /* On that connection (never on the channel): */
  ARIP_FRAME_REQUEST,      /* child -> parent (uutv)  serial, op, object, argument */
  ARIP_FRAME_REPLY,        /* parent -> child (ubv)   serial, needs ack, value */
  ARIP_FRAME_REPLY_ERROR,  /* parent -> child (usis)  serial, domain, code, message */
  ARIP_FRAME_EVENT,        /* parent -> child (tsv)   object, what, value */
  /* Before its hello, from a worker whose launcher asked for limits or a
   * sandbox: the pieces it was asked for and those it applied, whether it
   * refuses to serve, and why, a line per piece it could not apply. */
  ARIP_FRAME_SANDBOX,      /* child -> parent  (uubas) wanted, applied, refused, problems */
  ARIP_FRAME_LAST_KIND = ARIP_FRAME_SANDBOX,
} AripFrameKind;

typedef struct {
  AripFrameKind  kind;
  /* Owned, of the kind's type, normal form. Always set for ERROR frames
   * and those of the shared objects' connection;
   * for the others only by a decoder that keeps payloads (the default,
   * but not in a channel: the parts below are what it uses). */
  GVariant      *payload;
  GUnixFDList   *fds;       /* owned, nullable */

  /* The payload's parts, filled in by the decoder for the kinds that have
   * them, so that hot paths need no GVariant format strings. */
  GVariant      *value;     /* RESULT, MESSAGE, CALL: the inner value */
  const char    *function;  /* CALL */
  guint32        u32;       /* STATE: the state; HELLO: the version;
                             * REQUEST, REPLY: the serial */
  gint32         i32;       /* HELLO: the pid; REQUEST: the op; REPLY:
                             * whether it needs an acknowledgement */
  guint64        u64;       /* REQUEST: the object */
  gdouble        dbl;       /* PROGRESS */
  char          *function_owned;
  /* The value is large and not checked for normal form yet (see
   * arip_frame_decoder_set_defer_check()). */
  gboolean       needs_check;
  /* The size of the memfd the value came in, or 0. */
  guint64        memfd_size;
} AripFrame;

const GVariantType *arip_frame_kind_get_type (AripFrameKind kind);
/* A new reference to "()", built once: no arguments and no result are
 * common and should cost nothing. */
GVariant           *arip_variant_unit        (void);
/* The payload as a GVariant, built from the parts if the decoder did not
 * keep it. Transfer none. */
GVariant           *arip_frame_get_payload   (AripFrame    *frame);
const char         *arip_frame_kind_to_string (AripFrameKind kind);
void                arip_frame_free          (AripFrame    *frame);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AripFrame, arip_frame_free)

/* The GError an ERROR frame's payload `(sis)` stands for: the domain is
 * re-created from its name, and G_IO_ERROR_CANCELLED becomes
 * ARIP_ERROR_CHILD_CANCELLED. NULL if the domain is not a sane name. */
GError *arip_frame_payload_to_error (GVariant *payload);

/* Header and payload of a frame in one buffer. @payload is sunk. */
GBytes *arip_frame_encode (AripFrameKind  kind,
                           GVariant      *payload,
                           guint          n_fds);

/* The same bytes arip_frame_encode() makes, built without going through
 * GVariant's format strings: the frames sent on every call. */
GBytes *arip_frame_encode_value (AripFrameKind  kind,     /* RESULT, MESSAGE */
                                 GVariant      *value,
                                 guint          n_fds);
GBytes *arip_frame_encode_call  (const char    *function,
                                 GVariant      *args,
                                 guint          n_fds);
/* The shared objects' requests "(uutv)" and replies "(ubv)". @arg and
 * @value are sunk. NULL if too large. */
GBytes *arip_frame_encode_request (guint32      serial,
                                   guint32      op,
                                   guint64      id,
                                   GVariant    *arg,
                                   guint        n_fds);
GBytes *arip_frame_encode_reply   (guint32      serial,
                                   gboolean     flag,
                                   GVariant    *value,
                                   guint        n_fds);
GBytes *arip_frame_encode_u32   (AripFrameKind  kind,     /* STATE */
                                 guint32        value);
GBytes *arip_frame_encode_hello (guint32        version,
                                 gint32         pid);
GBytes *arip_frame_encode_consumed (guint64   size);
GBytes *arip_frame_encode_double (AripFrameKind kind,     /* PROGRESS */
                                  gdouble       value);

/* The decoder turns untrusted bytes (and descriptors) into frames. It is
 * pure: no I/O. It never allocates more than about twice what it was fed. */
typedef struct _AripFrameDecoder AripFrameDecoder;

AripFrameDecoder *arip_frame_decoder_new       (gsize              max_frame_size);
void              arip_frame_decoder_free      (AripFrameDecoder  *self);
/* Where to put up to *size new bytes; call _commit() with what was read. */
guint8           *arip_frame_decoder_prepare   (AripFrameDecoder  *self,
                                                gsize             *size);
void              arip_frame_decoder_commit    (AripFrameDecoder  *self,
                                                gsize              n_read);
void              arip_frame_decoder_feed      (AripFrameDecoder  *self,
                                                const guint8      *data,
                                                gsize              len);
/* Takes ownership of the descriptors. */
void              arip_frame_decoder_push_fds  (AripFrameDecoder  *self,
                                                const gint        *fds,
                                                guint              n_fds);
/* TRUE and *frame = NULL: need more bytes. FALSE: @error is set, the stream
 * is broken for good. */
gboolean          arip_frame_decoder_next      (AripFrameDecoder  *self,
                                                AripFrame        **frame,
                                                GError           **error);
/* Whether frames carry their whole payload as a GVariant (default TRUE). */
void              arip_frame_decoder_set_keep_payload (AripFrameDecoder *self,
                                                       gboolean          keep_payload);
/* Values of at least @min_size bytes (0: none) that need a slow check are
 * handed out unchecked, with needs_check set: the caller runs
 * arip_frame_check() where the time it takes hurts nobody. Only for a
 * decoder that does not keep payloads. */
void              arip_frame_decoder_set_defer_check (AripFrameDecoder *self,
                                                      gsize             min_size);
/* Checks a deferred value; FALSE if it is not in normal form. */
/* The most descriptors a frame may carry, and of those a frame that is not
 * a result (its memfd aside). */
void              arip_frame_decoder_set_max_fds (AripFrameDecoder *self,
                                                  guint             max_fds,
                                                  guint             max_other_fds);
gboolean          arip_frame_check             (AripFrame         *frame);
/* TRUE if bytes of an incomplete frame are buffered. */
gboolean          arip_frame_decoder_has_partial (AripFrameDecoder *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AripFrameDecoder, arip_frame_decoder_free)

/* @value (a reference is taken, floating or not) in normal form: itself
 * when it is (a large fixed array checked fast), else a normal copy. */
GVariant *arip_variant_normal (GVariant *value);

G_END_DECLS
