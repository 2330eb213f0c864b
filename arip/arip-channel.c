/* arip-channel.c: GVariant frames on the parent <-> worker socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Both ends use the same code. Reads and writes never block except in the
 * two *_sync() calls the worker uses before and after its main loop; the
 * parent only reads from a GSocket source in its own main context.
 *
 * What arrives is untrusted: the decoder checks the kind, the size (against
 * a hard limit, and without ever allocating for bytes that have not
 * arrived), the payload's type and that it is in normal form, and that the
 * descriptors a frame announces really came.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <glib-unix.h>

#include "arip-channel-private.h"
#include "arip-error.h"
#include "arip-memfd-private.h"
#include "arip-normal-form-private.h"

#define READ_CHUNK        (64 * 1024)
#define MAX_READS_PER_DISPATCH 32
#define MAX_READ_BYTES    (4 * 1024 * 1024)
/* What one main context dispatch of a channel may hand out. */
#define MAX_FRAMES_PER_DISPATCH 256
#define MAX_DISPATCH_US   4000
/* Values from this size up are checked in a thread. */
#define DEFER_CHECK_SIZE  (256 * 1024)

typedef struct {
  guint32 size;
  guint16 kind;
  guint16 n_fds;
} FrameHeader;

G_STATIC_ASSERT (sizeof (FrameHeader) == ARIP_FRAME_HEADER_SIZE);

static const struct {
  const char *name;
  const char *type;
} frame_kinds[] = {
  [ARIP_FRAME_HELLO] = { "hello", "(ui)" },
  [ARIP_FRAME_STATE] = { "state", "(u)" },
  [ARIP_FRAME_CALL] = { "call", "(sv)" },
  [ARIP_FRAME_RESULT] = { "result", "(v)" },
  [ARIP_FRAME_ERROR] = { "error", "(sis)" },
  [ARIP_FRAME_MESSAGE] = { "message", "(v)" },
  [ARIP_FRAME_PROGRESS] = { "progress", "(d)" },
  [ARIP_FRAME_RESULT_MEMFD] = { "result", "(ts)" },
  [ARIP_FRAME_MESSAGE_MEMFD] = { "message", "(ts)" },
  [ARIP_FRAME_CALL_MEMFD] = { "call", "(sts)" },
  [ARIP_FRAME_CONSUMED] = { "consumed", "(t)" },
  [ARIP_FRAME_SHARED_CONNECT] = { "shared connection", "(u)" },
  [ARIP_FRAME_REQUEST] = { "request", "(uutv)" },
  [ARIP_FRAME_REPLY] = { "reply", "(ubv)" },
  [ARIP_FRAME_REPLY_ERROR] = { "error reply", "(usis)" },
  [ARIP_FRAME_EVENT] = { "event", "(tsv)" },
  [ARIP_FRAME_SANDBOX] = { "sandbox report", "(uubas)" },
};

/* Kinds whose payload is always kept whole and checked as a whole: the
 * rare ones, and those of the shared objects' connection. */
static gboolean
kind_keeps_payload (guint kind)
{
  return kind == ARIP_FRAME_ERROR || kind == ARIP_FRAME_SHARED_CONNECT ||
         kind == ARIP_FRAME_REPLY_ERROR || kind == ARIP_FRAME_EVENT ||
         kind == ARIP_FRAME_SANDBOX;
}

static gboolean
kind_is_valid (guint kind)
{
  return kind >= ARIP_FRAME_HELLO && kind <= ARIP_FRAME_LAST_KIND;
}

GVariant *
arip_variant_unit (void)
{
  static GVariant *unit;

  if (g_once_init_enter (&unit))
    g_once_init_leave (&unit, g_variant_ref_sink (g_variant_new_tuple (NULL, 0)));
  return g_variant_ref (unit);
}

const GVariantType *
arip_frame_kind_get_type (AripFrameKind kind)
{
  g_return_val_if_fail (kind_is_valid (kind), NULL);

  return G_VARIANT_TYPE (frame_kinds[kind].type);
}

const char *
arip_frame_kind_to_string (AripFrameKind kind)
{
  if (!kind_is_valid (kind))
    return "unknown";
  return frame_kinds[kind].name;
}

void
arip_frame_free (AripFrame *frame)
{
  if (frame == NULL)
    return;
  g_clear_pointer (&frame->payload, g_variant_unref);
  g_clear_pointer (&frame->value, g_variant_unref);
  g_free (frame->function_owned);
  g_clear_object (&frame->fds);
  g_free (frame);
}

GBytes *
arip_frame_encode (AripFrameKind  kind,
                   GVariant      *payload,
                   guint          n_fds)
{
  g_autoptr(GVariant) value = NULL;
  FrameHeader header;
  gsize size;
  guint8 *data;

  g_return_val_if_fail (kind_is_valid (kind), NULL);
  g_return_val_if_fail (payload != NULL, NULL);
  g_return_val_if_fail (n_fds <= ARIP_FRAME_MAX_FDS, NULL);

  value = g_variant_ref_sink (payload);
  g_return_val_if_fail (g_variant_is_of_type (value, arip_frame_kind_get_type (kind)), NULL);

  if (!g_variant_is_normal_form (value))
    {
      GVariant *normal = g_variant_get_normal_form (value);
      g_variant_unref (value);
      value = g_variant_ref_sink (normal);
    }

  size = g_variant_get_size (value);
  if (size > ARIP_FRAME_MAX_SIZE)
    return NULL;

  header.size = (guint32) size;
  header.kind = (guint16) kind;
  header.n_fds = (guint16) n_fds;

  data = g_malloc (ARIP_FRAME_HEADER_SIZE + size);
  memcpy (data, &header, sizeof header);
  g_variant_store (value, data + ARIP_FRAME_HEADER_SIZE);

  return g_bytes_new_take (data, ARIP_FRAME_HEADER_SIZE + size);
}

#define MAX_ERROR_DOMAIN 256

static gboolean
domain_name_is_sane (const char *domain)
{
  gsize len = strlen (domain);

  if (len == 0 || len > MAX_ERROR_DOMAIN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (domain[i]) && strchr ("-_.", domain[i]) == NULL)
      return FALSE;
  return TRUE;
}

/* Error domains are quarks, and quarks live as long as the process: only
 * this many domains this process did not know yet are created from what
 * children send. */
#define MAX_NEW_ERROR_DOMAINS 64

static gint new_error_domains;

static GQuark
domain_to_quark (const char *domain)
{
  GQuark quark = g_quark_try_string (domain);

  if (quark != 0)
    return quark;
  if (g_atomic_int_add (&new_error_domains, 1) >= MAX_NEW_ERROR_DOMAINS)
    {
      g_atomic_int_add (&new_error_domains, -1);
      return 0;
    }
  return g_quark_from_string (domain);
}

GError *
arip_frame_payload_to_error (GVariant *payload)
{
  const char *domain, *message;
  GQuark quark;
  gint32 code;

  g_variant_get (payload, "(&si&s)", &domain, &code, &message);

  if (!domain_name_is_sane (domain))
    return NULL;

  if (g_str_equal (domain, g_quark_to_string (G_IO_ERROR)) && code == G_IO_ERROR_CANCELLED)
    return g_error_new_literal (ARIP_ERROR, ARIP_ERROR_CHILD_CANCELLED, message);

  quark = domain_to_quark (domain);
  if (quark == 0)
    return g_error_new (ARIP_ERROR, ARIP_ERROR_UNKNOWN_DOMAIN, "%s (%d): %s", domain, code, message);

  return g_error_new_literal (quark, code, message);
}

static guint8 *
frame_alloc (AripFrameKind  kind,
             gsize          size,
             guint          n_fds,
             gsize         *total)
{
  FrameHeader header;
  guint8 *data;

  header.size = (guint32) size;
  header.kind = (guint16) kind;
  header.n_fds = (guint16) n_fds;

  *total = ARIP_FRAME_HEADER_SIZE + size;
  data = g_malloc (*total);
  memcpy (data, &header, sizeof header);
  return data;
}

/* A value in normal form, as GVariant requires inside a normal-form
 * container; trusted values built by GLib already are. */
static gboolean
may_be_fixed_array (const char *type)
{
  return (type[0] == 'a' && type[1] != '\0' && type[2] == '\0') ||
         (type[0] == '(' && type[1] == 'a' && type[2] != '\0' && type[3] == ')' && type[4] == '\0');
}

static GVariant *
normal_value (GVariant *value)
{
  GVariant *owned = g_variant_ref_sink (value);
  g_autoptr(GVariant) inner = NULL;
  const char *type = g_variant_get_type_string (owned);

  /* Large fixed arrays are the common big value, alone or as a plain "v"
   * or "(v)": their bytes are checked fast (see arip-normal-form.c).
   * Only the array's bytes are asked for: a value built here is not
   * serialized whole just to be checked (a copy of all of it). */
  if (g_str_equal (type, "v"))
    inner = g_variant_get_variant (owned);
  else if (g_str_equal (type, "(v)"))
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (owned, 0);

      inner = g_variant_get_variant (child);
    }
  else
    inner = g_variant_ref (owned);
  type = g_variant_get_type_string (inner);
  if (may_be_fixed_array (type) &&
      arip_normal_form_check (type, g_variant_get_data (inner), g_variant_get_size (inner)) == 1)
    return owned;

  if (!g_variant_is_normal_form (owned))
    {
      GVariant *normal = g_variant_ref_sink (g_variant_get_normal_form (owned));
      g_variant_unref (owned);
      owned = normal;
    }
  return owned;
}

/* A serialized "v": the child's data, a zero byte, the child's type. */
static gsize
variant_size (GVariant *value)
{
  return g_variant_get_size (value) + 1 + strlen (g_variant_get_type_string (value));
}

static void
store_variant (GVariant *value,
               guint8   *dest)
{
  gsize size = g_variant_get_size (value);
  const char *type = g_variant_get_type_string (value);

  g_variant_store (value, dest);
  dest[size] = '\0';
  memcpy (dest + size + 1, type, strlen (type));
}

/* A tuple whose only variable member is a "v" at its end: the fixed
 * members at their places in @head (none: "(v)", laid out as its only
 * member), then the variant, with no framing offset. */
static GBytes *
encode_head_and_variant (AripFrameKind  kind,
                         const guint8  *head,
                         gsize          head_size,
                         GVariant      *value,
                         guint          n_fds)
{
  g_autoptr(GVariant) normal = normal_value (value);
  gsize size, total;
  guint8 *data;

  g_return_val_if_fail (n_fds <= ARIP_FRAME_MAX_FDS, NULL);

  size = head_size + variant_size (normal);
  if (size > ARIP_FRAME_MAX_SIZE)
    return NULL;
  data = frame_alloc (kind, size, n_fds, &total);
  if (head_size > 0)
    memcpy (data + ARIP_FRAME_HEADER_SIZE, head, head_size);
  store_variant (normal, data + ARIP_FRAME_HEADER_SIZE + head_size);
  return g_bytes_new_take (data, total);
}

GBytes *
arip_frame_encode_value (AripFrameKind  kind,
                         GVariant      *value,
                         guint          n_fds)
{
  g_return_val_if_fail (kind == ARIP_FRAME_RESULT || kind == ARIP_FRAME_MESSAGE, NULL);

  return encode_head_and_variant (kind, NULL, 0, value, n_fds);
}

GBytes *
arip_frame_encode_request (guint32   serial,
                           guint32   op,
                           guint64   id,
                           GVariant *arg,
                           guint     n_fds)
{
  guint8 head[16];

  memcpy (head, &serial, 4);
  memcpy (head + 4, &op, 4);
  memcpy (head + 8, &id, 8);
  return encode_head_and_variant (ARIP_FRAME_REQUEST, head, sizeof head, arg, n_fds);
}

GBytes *
arip_frame_encode_reply (guint32   serial,
                         gboolean  flag,
                         GVariant *value,
                         guint     n_fds)
{
  guint8 head[8] = { 0 };

  memcpy (head, &serial, 4);
  head[4] = flag ? 1 : 0;   /* then zeros up to the variant's alignment */
  return encode_head_and_variant (ARIP_FRAME_REPLY, head, sizeof head, value, n_fds);
}

GBytes *
arip_frame_encode_call (const char *function,
                        GVariant   *args,
                        guint       n_fds)
{
  g_autoptr(GVariant) normal = normal_value (args);
  gsize string_size = strlen (function) + 1;
  gsize variant_offset = (string_size + 7) & ~(gsize) 7;
  gsize body = variant_offset + variant_size (normal);
  gsize offset_size, size, total;
  guint64 offset = string_size;
  guint8 *data, *p;

  g_return_val_if_fail (n_fds <= ARIP_FRAME_MAX_FDS, NULL);

  /* "(sv)": the string, zero padding to the variant's alignment of 8, the
   * variant, then one framing offset (the end of the string), little
   * endian, as wide as the container's size requires. */
  if (body + 1 <= G_MAXUINT8)
    offset_size = 1;
  else if (body + 2 <= G_MAXUINT16)
    offset_size = 2;
  else if (body + 4 <= G_MAXUINT32)
    offset_size = 4;
  else
    offset_size = 8;
  size = body + offset_size;
  if (size > ARIP_FRAME_MAX_SIZE)
    return NULL;

  data = frame_alloc (ARIP_FRAME_CALL, size, n_fds, &total);
  p = data + ARIP_FRAME_HEADER_SIZE;
  memcpy (p, function, string_size);
  memset (p + string_size, 0, variant_offset - string_size);
  store_variant (normal, p + variant_offset);
  for (gsize i = 0; i < offset_size; i++)
    p[body + i] = (offset >> (8 * i)) & 0xff;

  return g_bytes_new_take (data, total);
}

GBytes *
arip_frame_encode_u32 (AripFrameKind kind,
                       guint32       value)
{
  gsize total;
  guint8 *data = frame_alloc (kind, sizeof value, 0, &total);

  g_return_val_if_fail (kind == ARIP_FRAME_STATE, NULL);

  memcpy (data + ARIP_FRAME_HEADER_SIZE, &value, sizeof value);
  return g_bytes_new_take (data, total);
}

GBytes *
arip_frame_encode_hello (guint32 version,
                         gint32  pid)
{
  gsize total;
  guint8 *data = frame_alloc (ARIP_FRAME_HELLO, 8, 0, &total);

  memcpy (data + ARIP_FRAME_HEADER_SIZE, &version, 4);
  memcpy (data + ARIP_FRAME_HEADER_SIZE + 4, &pid, 4);
  return g_bytes_new_take (data, total);
}

GBytes *
arip_frame_encode_consumed (guint64 size)
{
  gsize total;
  guint8 *data = frame_alloc (ARIP_FRAME_CONSUMED, sizeof size, 0, &total);

  memcpy (data + ARIP_FRAME_HEADER_SIZE, &size, sizeof size);
  return g_bytes_new_take (data, total);
}

GBytes *
arip_frame_encode_double (AripFrameKind kind,
                          gdouble       value)
{
  gsize total;
  guint8 *data = frame_alloc (kind, sizeof value, 0, &total);

  g_return_val_if_fail (kind == ARIP_FRAME_PROGRESS, NULL);

  memcpy (data + ARIP_FRAME_HEADER_SIZE, &value, sizeof value);
  return g_bytes_new_take (data, total);
}

/* ---------------------------------------------------------------------- */
/* The decoder                                                            */

struct _AripFrameDecoder {
  guint8  *buf;
  gsize    cap;
  gsize    pos;        /* first unconsumed byte */
  gsize    len;        /* end of valid bytes */
  gsize    max_frame_size;
  GArray  *fds;        /* gint, received and not yet given to a frame */
  GError  *error;      /* set once the stream is broken */
  gboolean keep_payload;
  gsize    defer_check_size;   /* 0: check every value at once */
  guint    max_fds;            /* the most a frame may carry */
  guint    max_other_fds;      /* ... that is not a result (memfd aside) */
};

AripFrameDecoder *
arip_frame_decoder_new (gsize max_frame_size)
{
  AripFrameDecoder *self = g_new0 (AripFrameDecoder, 1);

  self->max_frame_size = MIN (max_frame_size, (gsize) ARIP_FRAME_MAX_SIZE);
  self->keep_payload = TRUE;
  self->max_fds = ARIP_FRAME_MAX_FDS;
  self->max_other_fds = ARIP_FRAME_MAX_FDS;
  self->fds = g_array_new (FALSE, FALSE, sizeof (gint));
  return self;
}

static void
close_queued_fds (AripFrameDecoder *self)
{
  for (guint i = 0; i < self->fds->len; i++)
    close (g_array_index (self->fds, gint, i));
  g_array_set_size (self->fds, 0);
}

void
arip_frame_decoder_free (AripFrameDecoder *self)
{
  if (self == NULL)
    return;
  close_queued_fds (self);
  g_array_unref (self->fds);
  g_free (self->buf);
  g_clear_error (&self->error);
  g_free (self);
}

static gboolean
peek_header (AripFrameDecoder *self,
             FrameHeader      *header)
{
  if (self->len - self->pos < ARIP_FRAME_HEADER_SIZE)
    return FALSE;
  memcpy (header, self->buf + self->pos, sizeof *header);
  return TRUE;
}

static void
broken (AripFrameDecoder *self)
{
  /* Nothing after a broken frame can be trusted. */
  close_queued_fds (self);
  g_clear_pointer (&self->buf, g_free);
  self->cap = self->len = self->pos = 0;
}

static void
out_of_memory (AripFrameDecoder *self,
               gsize             size)
{
  g_autofree char *what = g_format_size_full (size, G_FORMAT_SIZE_LONG_FORMAT);

  if (self->error != NULL)
    return;
  self->error = g_error_new (ARIP_ERROR, ARIP_ERROR_NO_MEMORY,
                             _("there is not enough memory in this process for a frame of %s"),
                             what);
  broken (self);
}

guint8 *
arip_frame_decoder_prepare (AripFrameDecoder *self,
                            gsize            *size)
{
  if (self->error != NULL)
    {
      *size = 0;
      return NULL;
    }

  gsize buffered = self->len - self->pos;
  gsize want = READ_CHUNK;
  FrameHeader header;

  /* Once a large frame's header is in, read more of it at a time; but never
   * reserve more than we already hold plus a chunk, so a lying header
   * cannot make us allocate memory for bytes that never come. */
  if (peek_header (self, &header) && header.size <= self->max_frame_size)
    {
      gsize total = ARIP_FRAME_HEADER_SIZE + (gsize) header.size;

      if (total > buffered && total - buffered > READ_CHUNK)
        want = MIN (total - buffered, MAX ((gsize) READ_CHUNK, buffered));
    }

  /* Grow (or compact) only once less than half of what we want is free:
   * the buffer then doubles instead of being copied on every read. */
  if (self->pos > 0 && (buffered == 0 || self->pos >= self->cap / 2 ||
                        self->cap - self->len < want / 2))
    {
      memmove (self->buf, self->buf + self->pos, buffered);
      self->pos = 0;
      self->len = buffered;
    }

  if (self->cap - self->len < want / 2)
    {
      /* What a child sends must never abort us: under a memory limit the
       * allocation may fail, and then the frame does. */
      guint8 *grown = g_try_realloc (self->buf, self->len + want);

      if (grown == NULL)
        {
          out_of_memory (self, self->len + want);
          *size = 0;
          return NULL;
        }
      self->buf = grown;
      self->cap = self->len + want;
    }

  *size = self->cap - self->len;
  return self->buf + self->len;
}

void
arip_frame_decoder_commit (AripFrameDecoder *self,
                           gsize             n_read)
{
  g_return_if_fail (n_read <= self->cap - self->len);
  self->len += n_read;
}

void
arip_frame_decoder_feed (AripFrameDecoder *self,
                         const guint8     *data,
                         gsize             len)
{
  while (len > 0)
    {
      gsize room;
      guint8 *dest = arip_frame_decoder_prepare (self, &room);
      gsize n = MIN (room, len);

      if (dest == NULL)
        return;   /* broken: next() says why */

      memcpy (dest, data, n);
      arip_frame_decoder_commit (self, n);
      data += n;
      len -= n;
    }
}

void
arip_frame_decoder_push_fds (AripFrameDecoder *self,
                             const gint       *fds,
                             guint             n_fds)
{
  g_array_append_vals (self->fds, fds, n_fds);
}

gboolean
arip_frame_decoder_has_partial (AripFrameDecoder *self)
{
  return self->len > self->pos;
}

static gboolean
fail (AripFrameDecoder  *self,
      GError           **error,
      const char        *format,
      ...) G_GNUC_PRINTF (3, 4);

static gboolean
fail (AripFrameDecoder  *self,
      GError           **error,
      const char        *format,
      ...)
{
  va_list args;

  va_start (args, format);
  self->error = g_error_new_valist (ARIP_ERROR, ARIP_ERROR_INVALID_DATA, format, args);
  va_end (args);

  broken (self);

  g_propagate_error (error, g_error_copy (self->error));
  return FALSE;
}

/* A serialized "v" in [start, end) of @bytes: the child's data, a zero
 * byte, and a single definite type. The child must be in normal form. */
static GVariant *
parse_variant (GBytes   *bytes,
               gsize     start,
               gsize     end,
               gsize     defer_size,
               gboolean *deferred)
{
  /* Even "v" holding nothing needs its zero byte and a type. (Checked
   * first: an empty payload's data pointer may be NULL.) */
  if (end <= start)
    return NULL;

  const char *data = g_bytes_get_data (bytes, NULL);
  const char *type_end = data + end;
  const char *type_start, *scanned = NULL;
  gsize zero = end;
  g_autoptr(GBytes) child_bytes = NULL;
  GVariant *child;

  while (zero > start && data[zero - 1] != '\0')
    zero--;
  if (zero == start)
    return NULL;              /* no separator */
  type_start = data + zero;   /* just after the zero byte */
  zero--;

  /* "()" is the usual "no arguments" and "no result". */
  if (type_end - type_start == 2 && type_start[0] == '(' && type_start[1] == ')' &&
      zero - start == 1 && data[start] == '\0')
    return arip_variant_unit ();

  if (type_start == type_end ||
      !g_variant_type_string_scan (type_start, type_end, &scanned) ||
      scanned != type_end ||
      !g_variant_type_is_definite ((const GVariantType *) type_start))
    return NULL;

  {
    g_autofree char *type = g_strndup (type_start, type_end - type_start);
    int trusted;

    child_bytes = g_bytes_new_from_bytes (bytes, start, zero - start);
    trusted = arip_normal_form_check (type, (const guint8 *) data + start, zero - start);
    if (trusted == 0)
      return NULL;
    child = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), child_bytes,
                                                          trusted == 1));
    if (trusted == 1)
      return child;
  }

  /* Checking a large value can take seconds: the caller does it where it
   * blocks nobody. Until then nothing reads the value. */
  if (defer_size > 0 && zero - start >= defer_size)
    {
      *deferred = TRUE;
      return child;
    }

  if (!g_variant_is_normal_form (child))
    {
      g_variant_unref (child);
      return NULL;
    }
  return child;
}

/* Takes the payload apart by hand for the kinds sent on every call,
 * checking what g_variant_is_normal_form() would; FALSE if it is not a
 * valid value of the kind's type in normal form. */
static gboolean
parse_payload (AripFrame *frame,
               GBytes    *bytes,
               gsize      defer_size)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);

  switch (frame->kind)
    {
    case ARIP_FRAME_HELLO:
      if (size != 8)
        return FALSE;
      memcpy (&frame->u32, data, 4);
      memcpy (&frame->i32, data + 4, 4);
      return TRUE;

    case ARIP_FRAME_STATE:
      if (size != 4)
        return FALSE;
      memcpy (&frame->u32, data, 4);
      return TRUE;

    case ARIP_FRAME_PROGRESS:
      if (size != 8)
        return FALSE;
      memcpy (&frame->dbl, data, 8);
      return TRUE;

    case ARIP_FRAME_CONSUMED:
      {
        guint64 consumed;

        if (size != 8)
          return FALSE;
        memcpy (&consumed, data, 8);
        frame->memfd_size = consumed;
        return TRUE;
      }

    case ARIP_FRAME_RESULT:
    case ARIP_FRAME_MESSAGE:
      /* "(v)" is laid out as its only member. */
      frame->value = parse_variant (bytes, 0, size, defer_size, &frame->needs_check);
      return frame->value != NULL;

    case ARIP_FRAME_CALL:
      {
        /* "(sv)": string, zero padding to 8, variant, and the end of the
         * string as a little-endian framing offset of the minimal width
         * for the container's size. */
        gsize offset_size = size > G_MAXUINT32 ? 8 : size > G_MAXUINT16 ? 4 : size > G_MAXUINT8 ? 2 : 1;
        guint64 string_end = 0;
        gsize variant_start, body_end;

        if (size < offset_size)
          return FALSE;
        body_end = size - offset_size;
        for (gsize i = 0; i < offset_size; i++)
          string_end |= (guint64) data[body_end + i] << (8 * i);

        if (string_end < 1 || string_end > body_end ||
            data[string_end - 1] != '\0' ||
            memchr (data, '\0', string_end - 1) != NULL ||
            !g_utf8_validate ((const char *) data, string_end - 1, NULL))
          return FALSE;

        variant_start = (string_end + 7) & ~(gsize) 7;
        if (variant_start > body_end)
          return FALSE;
        for (gsize i = string_end; i < variant_start; i++)
          if (data[i] != 0)
            return FALSE;

        frame->value = parse_variant (bytes, variant_start, body_end, defer_size,
                                      &frame->needs_check);
        if (frame->value == NULL)
          return FALSE;
        frame->function_owned = g_strndup ((const char *) data, string_end - 1);
        frame->function = frame->function_owned;
        return TRUE;
      }

    case ARIP_FRAME_REQUEST:
      /* "(uutv)": serial, op and object at fixed places, then the
       * argument, the last member, with no framing offset. */
      if (size < 16)
        return FALSE;
      memcpy (&frame->u32, data, 4);
      memcpy (&frame->i32, data + 4, 4);
      memcpy (&frame->u64, data + 8, 8);
      frame->value = parse_variant (bytes, 16, size, defer_size, &frame->needs_check);
      return frame->value != NULL;

    case ARIP_FRAME_REPLY:
      /* "(ubv)": serial, a boolean, zero padding to 8, the value. */
      if (size < 8 || data[4] > 1 || data[5] != 0 || data[6] != 0 || data[7] != 0)
        return FALSE;
      memcpy (&frame->u32, data, 4);
      frame->i32 = data[4];
      frame->value = parse_variant (bytes, 8, size, defer_size, &frame->needs_check);
      return frame->value != NULL;

    case ARIP_FRAME_ERROR:
    default:
      return TRUE;   /* the payload is checked as a whole */
    }
}

static gboolean
kind_is_memfd (guint kind)
{
  return kind == ARIP_FRAME_RESULT_MEMFD || kind == ARIP_FRAME_MESSAGE_MEMFD ||
         kind == ARIP_FRAME_CALL_MEMFD;
}

/* Breaks the stream with @reason (consumed) as the error. */
static gboolean
fail_with (AripFrameDecoder  *self,
           GError           **error,
           GError            *reason)
{
  g_clear_error (&self->error);
  self->error = reason;
  broken (self);
  g_propagate_error (error, g_error_copy (self->error));
  return FALSE;
}

/* A memfd frame: "(ts)" or "(sts)" names the value's size and type; its
 * bytes are the memfd @fd (consumed), which must be sealed. The frame
 * becomes the RESULT, MESSAGE or CALL frame it stands for, whose value is
 * the mapping. FALSE with @error when the memfd is wrong, without when
 * the payload is. */
static gboolean
parse_memfd_payload (AripFrameDecoder  *self,
                     AripFrame         *frame,
                     GBytes            *payload_bytes,
                     gint               fd,
                     GError           **error)
{
  g_autoptr(GVariant) payload =
    g_variant_ref_sink (g_variant_new_from_bytes (arip_frame_kind_get_type (frame->kind),
                                                  payload_bytes, FALSE));
  g_autoptr(GBytes) bytes = NULL;
  const char *function = NULL, *type;
  const char *scanned = NULL;
  guint64 size;
  int trusted;

  if (!g_variant_is_normal_form (payload))
    {
      close (fd);
      return FALSE;
    }
  if (frame->kind == ARIP_FRAME_CALL_MEMFD)
    g_variant_get (payload, "(&st&s)", &function, &size, &type);
  else
    g_variant_get (payload, "(t&s)", &size, &type);

  if (!g_variant_type_string_scan (type, NULL, &scanned) || *scanned != '\0' ||
      !g_variant_type_is_definite ((const GVariantType *) type) ||
      (function != NULL && !g_utf8_validate (function, -1, NULL)))
    {
      close (fd);
      return FALSE;
    }
  if (size > self->max_frame_size)
    {
      close (fd);
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("a value of %llu bytes, more than the limit of %u bytes"),
                   (unsigned long long) size, (guint) self->max_frame_size);
      return FALSE;
    }

  bytes = arip_memfd_map (fd, size, error);
  if (bytes == NULL)
    return FALSE;
  frame->memfd_size = size;

  /* The same checks as for a value that came through the socket. */
  trusted = arip_normal_form_check (type, g_bytes_get_data (bytes, NULL), (gsize) size);
  if (trusted == 0)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("a %s frame whose value is not in normal form"),
                   arip_frame_kind_to_string (frame->kind));
      return FALSE;
    }
  frame->value = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes,
                                                               trusted == 1));
  if (trusted != 1)
    {
      if (!self->keep_payload && self->defer_check_size > 0 && size >= self->defer_check_size)
        frame->needs_check = TRUE;
      else if (!g_variant_is_normal_form (frame->value))
        {
          g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                       _("a %s frame whose value is not in normal form"),
                       arip_frame_kind_to_string (frame->kind));
          return FALSE;
        }
    }

  switch (frame->kind)
    {
    case ARIP_FRAME_RESULT_MEMFD:
      frame->kind = ARIP_FRAME_RESULT;
      break;
    case ARIP_FRAME_MESSAGE_MEMFD:
      frame->kind = ARIP_FRAME_MESSAGE;
      break;
    case ARIP_FRAME_CALL_MEMFD:
    default:
      frame->kind = ARIP_FRAME_CALL;
      frame->function_owned = g_strdup (function);
      frame->function = frame->function_owned;
      break;
    }
  return TRUE;
}

gboolean
arip_frame_decoder_next (AripFrameDecoder  *self,
                         AripFrame        **frame,
                         GError           **error)
{
  FrameHeader header;
  gsize total;
  g_autoptr(GBytes) payload_bytes = NULL;
  g_autoptr(GVariant) payload = NULL;
  AripFrame *result;

  *frame = NULL;

  if (self->error != NULL)
    {
      g_propagate_error (error, g_error_copy (self->error));
      return FALSE;
    }

  if (self->fds->len > self->max_fds)
    return fail (self, error, _("more file descriptors arrived (%u) than any frame announced"),
                 self->fds->len);

  if (!peek_header (self, &header))
    return TRUE;

  if (!kind_is_valid (header.kind))
    return fail (self, error, _("a frame of unknown kind %u"), header.kind);
  if (header.size > self->max_frame_size)
    return fail (self, error, _("a %s frame of %u bytes, more than the limit of %u bytes"),
                 arip_frame_kind_to_string (header.kind), header.size, (guint) self->max_frame_size);
  if (header.n_fds > self->max_fds)
    return fail (self, error, _("a %s frame announcing %u file descriptors, more than the limit of %u"),
                 arip_frame_kind_to_string (header.kind), header.n_fds, self->max_fds);
  /* Known from the header: descriptors a frame may not carry are never
   * held while the rest of it is awaited. */
  if (header.kind != ARIP_FRAME_RESULT && header.kind != ARIP_FRAME_RESULT_MEMFD &&
      header.n_fds > self->max_other_fds + (kind_is_memfd (header.kind) ? 1 : 0))
    return fail (self, error, _("a %s frame announcing %u file descriptors, more than the limit of %u"),
                 arip_frame_kind_to_string (header.kind), header.n_fds, self->max_other_fds);


  total = ARIP_FRAME_HEADER_SIZE + (gsize) header.size;
  if (self->len - self->pos < total)
    return TRUE;

  if (header.n_fds > self->fds->len)
    return fail (self, error, _("a %s frame announcing %u file descriptors of which %u arrived"),
                 arip_frame_kind_to_string (header.kind), header.n_fds, self->fds->len);

  if (self->pos == 0 && self->len == total && header.size >= READ_CHUNK)
    {
      /* A large frame that fills the buffer: hand the buffer over instead
       * of copying it. The payload stays 8-byte aligned. */
      g_autoptr(GBytes) whole = g_bytes_new_take (self->buf, total);

      self->buf = NULL;
      self->cap = self->len = self->pos = 0;
      payload_bytes = g_bytes_new_from_bytes (whole, ARIP_FRAME_HEADER_SIZE, header.size);
    }
  else
    {
      guint8 *copy = header.size > 0 ? g_try_malloc (header.size) : NULL;

      if (header.size > 0 && copy == NULL)
        {
          out_of_memory (self, header.size);
          g_propagate_error (error, g_error_copy (self->error));
          return FALSE;
        }
      if (header.size > 0)
        memcpy (copy, self->buf + self->pos + ARIP_FRAME_HEADER_SIZE, header.size);
      payload_bytes = g_bytes_new_take (copy, header.size);
      self->pos += total;
    }

  result = g_new0 (AripFrame, 1);
  result->kind = header.kind;

  if (kind_is_memfd (header.kind))
    {
      g_autoptr(GError) local_error = NULL;
      gint fd;

      /* The memfd is the last descriptor; those before go with the value. */
      if (header.n_fds < 1)
        {
          arip_frame_free (result);
          return fail (self, error, _("a %s frame with its value in a memfd, carrying %u descriptors"),
                       arip_frame_kind_to_string (header.kind), header.n_fds);
        }
      fd = g_array_index (self->fds, gint, header.n_fds - 1);
      if (header.n_fds > 1)
        result->fds = g_unix_fd_list_new_from_array ((gint *) self->fds->data, header.n_fds - 1);
      g_array_remove_range (self->fds, 0, header.n_fds);
      if (!parse_memfd_payload (self, result, payload_bytes, fd, &local_error))
        {
          if (local_error == NULL)
            goto invalid;
          arip_frame_free (result);
          return fail_with (self, error, g_steal_pointer (&local_error));
        }
      *frame = result;
      return TRUE;
    }

  if (!parse_payload (result, payload_bytes,
                      self->keep_payload ? 0 : self->defer_check_size))
    goto invalid;

  /* The whole payload as a GVariant: always for errors, which are taken
   * apart from it; for other kinds only when asked, as the parts are
   * already there. */
  if (kind_keeps_payload (header.kind) || self->keep_payload)
    {
      payload = g_variant_ref_sink (g_variant_new_from_bytes (arip_frame_kind_get_type (header.kind),
                                                              payload_bytes, FALSE));
      if (!g_variant_is_normal_form (payload))
        goto invalid;
      result->payload = g_steal_pointer (&payload);
    }

  if (header.n_fds > 0)
    {
      result->fds = g_unix_fd_list_new_from_array ((gint *) self->fds->data, header.n_fds);
      g_array_remove_range (self->fds, 0, header.n_fds);
    }

  *frame = result;
  return TRUE;

invalid:
  arip_frame_free (result);
  return fail (self, error, _("a %s frame whose payload is not a valid “%s” value"),
               arip_frame_kind_to_string (header.kind), frame_kinds[header.kind].type);
}

GVariant *
arip_frame_get_payload (AripFrame *frame)
{
  if (frame->payload != NULL)
    return frame->payload;

  switch (frame->kind)
    {
    case ARIP_FRAME_HELLO:
      frame->payload = g_variant_new ("(ui)", frame->u32, frame->i32);
      break;
    case ARIP_FRAME_STATE:
      frame->payload = g_variant_new ("(u)", frame->u32);
      break;
    case ARIP_FRAME_PROGRESS:
      frame->payload = g_variant_new ("(d)", frame->dbl);
      break;
    case ARIP_FRAME_CONSUMED:
      frame->payload = g_variant_new ("(t)", frame->memfd_size);
      break;
    case ARIP_FRAME_RESULT:
    case ARIP_FRAME_MESSAGE:
      frame->payload = g_variant_new ("(v)", frame->value);
      break;
    case ARIP_FRAME_CALL:
      frame->payload = g_variant_new ("(sv)", frame->function, frame->value);
      break;
    case ARIP_FRAME_REQUEST:
      frame->payload = g_variant_new ("(uutv)", frame->u32, (guint32) frame->i32, frame->u64,
                                      frame->value);
      break;
    case ARIP_FRAME_REPLY:
      frame->payload = g_variant_new ("(ubv)", frame->u32, frame->i32 != 0, frame->value);
      break;
    case ARIP_FRAME_ERROR:
    default:
      g_return_val_if_reached (NULL);
    }

  g_variant_ref_sink (frame->payload);
  return frame->payload;
}

void
arip_frame_decoder_set_keep_payload (AripFrameDecoder *self,
                                     gboolean          keep_payload)
{
  self->keep_payload = !!keep_payload;
}

void
arip_frame_decoder_set_defer_check (AripFrameDecoder *self,
                                    gsize             min_size)
{
  self->defer_check_size = min_size;
}

gboolean
arip_frame_check (AripFrame *frame)
{
  int normal;

  if (!frame->needs_check)
    return TRUE;
  normal = arip_normal_form_check_full (g_variant_get_type_string (frame->value),
                                        g_variant_get_data (frame->value),
                                        g_variant_get_size (frame->value));
  if (normal == 0 || (normal < 0 && !g_variant_is_normal_form (frame->value)))
    return FALSE;
  /* Trusted from now on: GLib would check it again, slowly, if it is
   * sent on or put in a container. */
  {
    g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes (frame->value);
    GVariant *trusted = g_variant_new_from_bytes (g_variant_get_type (frame->value), bytes, TRUE);

    g_variant_unref (frame->value);
    frame->value = g_variant_ref_sink (trusted);
  }
  frame->needs_check = FALSE;
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* The channel                                                            */

typedef struct {
  GBytes      *data;
  gsize        offset;
  GUnixFDList *fds;    /* sent with the first byte */
  gsize        extra;  /* bytes in a memfd that the frame carries */
} OutFrame;

struct _AripChannel {
  gint                   ref_count;
  gint                   fd;          /* -1 once closed */
  AripFrameDecoder      *decoder;
  GMainContext          *context;
  GSource               *in_source;
  GSource               *out_source;
  AripChannelFrameFunc   frame_func;
  AripChannelClosedFunc  closed_func;
  gpointer               user_data;
  GQueue                 out_queue;
  gsize                  out_bytes;      /* queued and not yet written */
  guint64                in_flight;      /* in memfd messages not yet handled */
  gsize                  last_request;   /* bytes the last read asked for */
  AripFrame             *checking;       /* a large value being checked */
  guint                  closed : 1;
  guint                  reading_done : 1;
  guint                  write_failed : 1;
  guint                  sync_writes : 1;
  guint                  max_fds;
  guint                  draining : 1;
  guint                  drain_now : 1;
  gsize                  drain_left;
  AripChannelDrainedFunc drained_func;
  gpointer               drained_data;
};

static void
out_frame_free (gpointer data)
{
  OutFrame *out = data;

  g_bytes_unref (out->data);
  g_clear_object (&out->fds);
  g_free (out);
}

AripChannel *
arip_channel_new (gint     fd,
                  GError **error)
{
  AripChannel *self;
  struct stat st;
  int domain = 0, type = 0;
  socklen_t len = sizeof (int);

  /* Plain system calls rather than GSocket: a worker starts faster without
   * initializing GIO's networking, and every call saves a little. */
  if (fstat (fd, &st) < 0 || !S_ISSOCK (st.st_mode) ||
      getsockopt (fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX ||
      (len = sizeof (int), getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len)) < 0 ||
      type != SOCK_STREAM)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("File descriptor %d is not a Unix stream socket"), fd);
      close (fd);
      return NULL;
    }

  if (!g_unix_set_fd_nonblocking (fd, TRUE, error))
    {
      close (fd);
      return NULL;
    }

  self = g_new0 (AripChannel, 1);
  self->ref_count = 1;
  self->fd = fd;
  self->max_fds = ARIP_FRAME_MAX_FDS;
  self->decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
  arip_frame_decoder_set_keep_payload (self->decoder, FALSE);
  arip_frame_decoder_set_defer_check (self->decoder, DEFER_CHECK_SIZE);
  g_queue_init (&self->out_queue);
  return self;
}

AripChannel *
arip_channel_ref (AripChannel *self)
{
  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
arip_channel_unref (AripChannel *self)
{
  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;

  arip_channel_close (self);
  g_free (self);
}

gint
arip_channel_get_fd (AripChannel *self)
{
  return self->fd;
}

void
arip_channel_set_max_fds (AripChannel *self,
                          guint        max_fds,
                          guint        max_other_fds)
{
  self->max_fds = MIN (max_fds, (guint) ARIP_FRAME_MAX_FDS);
  if (self->decoder != NULL)
    {
      self->decoder->max_fds = self->max_fds;
      self->decoder->max_other_fds = MIN (max_other_fds, self->max_fds);
    }
}

gsize
arip_channel_get_queued_bytes (AripChannel *self)
{
  return self->out_bytes + (gsize) self->in_flight;
}

gboolean
arip_channel_consumed (AripChannel *self,
                       guint64      size)
{
  if (size > self->in_flight)
    return FALSE;
  self->in_flight -= size;
  return TRUE;
}

static void
set_errno_error (GError     **error,
                 int          saved_errno,
                 const char  *what)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               "%s: %s", what, g_strerror (saved_errno));
}

/* Waits until the socket is readable or writable. */
static gboolean
wait_for (AripChannel  *self,
          short         events,
          GError      **error)
{
  struct pollfd pfd = { .fd = self->fd, .events = events };

  while (poll (&pfd, 1, -1) < 0)
    {
      if (errno != EINTR)
        {
          set_errno_error (error, errno, "poll");
          return FALSE;
        }
    }
  return TRUE;
}

/* One recvmsg into the decoder, of at most @max bytes (0: as many as fit):
 * > 0 bytes read, 0 at EOF, -1 on error (G_IO_ERROR_WOULD_BLOCK when
 * nothing is there yet). Descriptors that come along are queued in the
 * decoder. */
static gssize
read_once (AripChannel  *self,
           gsize         max,
           GError      **error)
{
  union {
    char buf[CMSG_SPACE (sizeof (int) * ARIP_FRAME_MAX_FDS)];
    struct cmsghdr align;
  } control;
  struct iovec iov;
  struct msghdr msg = { 0 };
  guint n_received = 0;
  gssize n;

  iov.iov_base = arip_frame_decoder_prepare (self->decoder, &iov.iov_len);
  if (iov.iov_base == NULL)
    {
      /* The decoder could not grow; it tells why. */
      AripFrame *frame = NULL;

      if (!arip_frame_decoder_next (self->decoder, &frame, error))
        return -1;
      arip_frame_free (frame);
      g_set_error_literal (error, ARIP_ERROR, ARIP_ERROR_NO_MEMORY, "out of memory");
      return -1;
    }
  /* One read copies at most this much: a large frame comes over
   * several dispatches, and the main context runs in between. */
  iov.iov_len = MIN (iov.iov_len, (gsize) MAX_READ_BYTES);
  if (max > 0)
    iov.iov_len = MIN (iov.iov_len, max);
  self->last_request = iov.iov_len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  /* Beyond the room there is, the kernel discards descriptors (and says
   * so with MSG_CTRUNC): no more is ever installed in this process. */
  if (self->max_fds > 0)
    {
      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * self->max_fds);
    }

  do
    n = recvmsg (self->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);

  if (n < 0)
    {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "recvmsg: EAGAIN");
      else
        set_errno_error (error, errno, "recvmsg");
      return -1;
    }

  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c != NULL; c = CMSG_NXTHDR (&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      {
        guint n_fds = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
        gint fds[ARIP_FRAME_MAX_FDS];

        n_fds = MIN (n_fds, G_N_ELEMENTS (fds));
        memcpy (fds, CMSG_DATA (c), n_fds * sizeof (int));
        n_received += n_fds;
        arip_frame_decoder_push_fds (self->decoder, fds, n_fds);
      }

  if (msg.msg_flags & MSG_CTRUNC)
    {
      if (n_received < self->max_fds)
        /* The buffer had room: the kernel could not install them. */
        g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                     _("file descriptors the child sent were lost: this process may have "
                       "run out of descriptors (see RLIMIT_NOFILE)"));
      else
        g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                     _("more file descriptors arrived at once than a frame may carry here (%u)"),
                     self->max_fds);
      return -1;
    }

  if (n > 0)
    arip_frame_decoder_commit (self->decoder, n);

  return n;
}

static void
finish_reading (AripChannel  *self,
                const GError *error)
{
  if (self->reading_done)
    return;
  self->reading_done = TRUE;

  if (self->in_source != NULL)
    {
      g_source_destroy (self->in_source);
      g_clear_pointer (&self->in_source, g_source_unref);
    }

  if (!self->closed && self->closed_func != NULL)
    self->closed_func (self, error, self->user_data);
}

typedef enum {
  DISPATCH_NEED_BYTES,   /* every complete frame was handed out */
  DISPATCH_OVER,         /* reading is over */
  DISPATCH_PAUSED,       /* the budget ran out, or a value is being checked */
} DispatchResult;

typedef struct {
  guint  frames;        /* frames left to hand out, 0: no limit */
  gint64 deadline;      /* monotonic µs, 0: none */
} Budget;

static void start_check    (AripChannel *self,
                            AripFrame   *frame);
static void continue_drain (AripChannel *self);

static gboolean
budget_spent (Budget *budget,
              guint   handed_out)
{
  if (budget == NULL)
    return FALSE;
  if (budget->frames > 0 && handed_out >= budget->frames)
    return TRUE;
  /* The clock is cheap, but not free: look every few frames. */
  return budget->deadline > 0 && handed_out % 16 == 0 &&
         g_get_monotonic_time () >= budget->deadline;
}

static void
hand_out (AripChannel *self,
          AripFrame   *frame)
{
  if (self->frame_func != NULL)
    self->frame_func (self, frame, self->user_data);
  arip_frame_free (frame);
}

/* Hands complete frames to the owner, within @budget (NULL: no limit). */
static DispatchResult
dispatch_frames (AripChannel *self,
                 Budget      *budget)
{
  guint handed_out = 0;

  while (!self->closed && !self->reading_done)
    {
      g_autoptr(GError) error = NULL;
      AripFrame *frame = NULL;

      if (self->checking != NULL)
        return DISPATCH_PAUSED;
      if (handed_out > 0 && budget_spent (budget, handed_out))
        return DISPATCH_PAUSED;

      if (!arip_frame_decoder_next (self->decoder, &frame, &error))
        {
          finish_reading (self, error);
          return DISPATCH_OVER;
        }
      if (frame == NULL)
        return DISPATCH_NEED_BYTES;

      if (frame->needs_check && self->context != NULL && !self->drain_now)
        {
          start_check (self, frame);
          return DISPATCH_PAUSED;
        }
      if (frame->needs_check && !arip_frame_check (frame))
        {
          g_autoptr(GError) invalid =
            g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                         _("a %s frame whose value is not in normal form"),
                         arip_frame_kind_to_string (frame->kind));
          arip_frame_free (frame);
          finish_reading (self, invalid);
          return DISPATCH_OVER;
        }

      hand_out (self, frame);
      handed_out++;
    }

  return DISPATCH_OVER;
}

/* Reads and dispatches what is there, at most @max_reads reads (0: until
 * the socket is empty) and @max_bytes bytes (0: no limit), within
 * @budget. */
static DispatchResult
read_available (AripChannel *self,
                guint        max_reads,
                gsize        max_bytes,
                Budget      *budget,
                gsize       *bytes_read)
{
  gsize dummy = 0;
  gsize *total = bytes_read != NULL ? bytes_read : &dummy;
  DispatchResult r;

  /* Frames already buffered come first. */
  r = dispatch_frames (self, budget);
  if (r != DISPATCH_NEED_BYTES)
    return r;

  for (guint i = 0; max_reads == 0 || i < max_reads; i++)
    {
      g_autoptr(GError) error = NULL;
      gssize n;

      if (self->closed || self->reading_done)
        return DISPATCH_OVER;
      if (max_bytes > 0 && *total >= max_bytes)
        return DISPATCH_NEED_BYTES;

      n = read_once (self, max_bytes > 0 ? max_bytes - *total : 0, &error);
      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            return DISPATCH_NEED_BYTES;
          /* Frames read before the error still count. */
          if (dispatch_frames (self, NULL) != DISPATCH_OVER)
            finish_reading (self, error);
          return DISPATCH_OVER;
        }

      if (n == 0)
        {
          r = dispatch_frames (self, NULL);
          if (r != DISPATCH_NEED_BYTES)
            return r;
          if (arip_frame_decoder_has_partial (self->decoder))
            {
              g_autoptr(GError) truncated =
                g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                             _("the channel was closed in the middle of a frame"));
              finish_reading (self, truncated);
            }
          else
            finish_reading (self, NULL);
          return DISPATCH_OVER;
        }

      *total += (gsize) n;
      r = dispatch_frames (self, budget);
      if (r != DISPATCH_NEED_BYTES)
        return r;

      /* Reading a large frame takes time too. */
      if (budget != NULL && budget->deadline > 0 && g_get_monotonic_time () >= budget->deadline)
        return DISPATCH_PAUSED;

      /* A short read emptied the socket: don't ask again only to hear
       * EAGAIN; the source tells us when more comes. */
      if (max_reads != 0 && (gsize) n < self->last_request)
        return DISPATCH_NEED_BYTES;
    }

  return DISPATCH_NEED_BYTES;
}

static gboolean on_readable (gint         fd,
                             GIOCondition condition,
                             gpointer     user_data);

static void
watch_input (AripChannel *self)
{
  self->in_source = g_unix_fd_source_new (self->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_callback (self->in_source, G_SOURCE_FUNC (on_readable), self, NULL);
  g_source_set_static_name (self->in_source, "[arip] channel read");
  /* GLib blocks a source that cannot recurse while it dispatches, which
   * removes its fd from the poll set and wakes the context up, twice per
   * dispatch. Frames keep their order when a handler iterates the context
   * itself, so recursion is safe here and saves those syscalls. */
  g_source_set_can_recurse (self->in_source, TRUE);
  g_source_attach (self->in_source, self->context);
}

static gboolean
on_readable (gint          fd,
             GIOCondition  condition,
             gpointer      user_data)
{
  AripChannel *self = user_data;
  /* One dispatch hands out a bounded number of frames in a bounded time,
   * so that a flood from one child never starves the rest of the main
   * context: what is left waits for the next iteration. */
  Budget budget = { MAX_FRAMES_PER_DISPATCH, g_get_monotonic_time () + MAX_DISPATCH_US };
  DispatchResult r;

  arip_channel_ref (self);
  if (self->in_source != NULL)
    g_source_set_ready_time (self->in_source, -1);
  r = read_available (self, MAX_READS_PER_DISPATCH, 0, &budget, NULL);
  if (r == DISPATCH_PAUSED && self->checking == NULL && self->in_source != NULL)
    g_source_set_ready_time (self->in_source, 0);
  if (r == DISPATCH_OVER && self->in_source != NULL)
    {
      /* finish_reading() already destroyed it; be safe either way. */
      g_clear_pointer (&self->in_source, g_source_unref);
    }
  arip_channel_unref (self);

  /* While a value is checked, the source is gone; it comes back after. */
  return r == DISPATCH_OVER || self->in_source == NULL ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/* Checking a large value for normal form may take seconds (GLib checks
 * an array of 100 million elements one by one): it happens in a thread of
 * GIO's pool, and the channel stops reading until it is done, so frames
 * keep their order. */
static void
check_in_thread (GTask        *task,
                 gpointer      source_object,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  AripFrame *frame = task_data;

  g_task_return_boolean (task, arip_frame_check (frame));
}

static void
on_checked (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  AripChannel *self = user_data;
  AripFrame *frame = g_steal_pointer (&self->checking);
  gboolean ok = g_task_propagate_boolean (G_TASK (result), NULL);

  if (!self->closed && !self->reading_done && (self->draining || self->drained_func == NULL))
    {
      if (!ok)
        {
          g_autoptr(GError) invalid =
            g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                         _("a %s frame whose value is not in normal form"),
                         arip_frame_kind_to_string (frame->kind));
          finish_reading (self, invalid);
        }
      else
        {
          hand_out (self, g_steal_pointer (&frame));
          if (!self->draining && !self->closed && !self->reading_done && self->in_source == NULL)
            {
              watch_input (self);
              /* Frames may be buffered already: look at once. */
              g_source_set_ready_time (self->in_source, 0);
            }
        }
    }

  /* A drain waits for the check; it ends even if the channel closed. */
  if (self->draining)
    continue_drain (self);

  arip_frame_free (frame);
  arip_channel_unref (self);
}

static void
start_check (AripChannel *self,
             AripFrame   *frame)
{
  g_autoptr(GTask) task = NULL;

  self->checking = frame;
  if (self->in_source != NULL)
    {
      g_source_destroy (self->in_source);
      g_clear_pointer (&self->in_source, g_source_unref);
    }

  g_main_context_push_thread_default (self->context);
  task = g_task_new (NULL, NULL, on_checked, arip_channel_ref (self));
  g_main_context_pop_thread_default (self->context);
  g_task_set_source_tag (task, start_check);
  g_task_set_task_data (task, frame, NULL);
  g_task_run_in_thread (task, check_in_thread);
}

void
arip_channel_start_reading (AripChannel           *self,
                            GMainContext          *context,
                            AripChannelFrameFunc   frame_func,
                            AripChannelClosedFunc  closed_func,
                            gpointer               user_data)
{
  g_return_if_fail (self->in_source == NULL);
  g_return_if_fail (!self->closed);

  self->context = context != NULL ? g_main_context_ref (context)
                                  : g_main_context_ref_thread_default ();
  self->frame_func = frame_func;
  self->closed_func = closed_func;
  self->user_data = user_data;

  watch_input (self);

  /* Frames that were already decoded by receive_sync() are due now. */
  if (arip_frame_decoder_has_partial (self->decoder))
    g_source_set_ready_time (self->in_source, 0);
}

/* Reads on for a drain; calls its callback once it is over. */
static void
continue_drain (AripChannel *self)
{
  AripChannelDrainedFunc done;
  gsize total = 0;

  /* Frames already read come first, then at most what is left to read. */
  if (self->checking == NULL && !self->closed && !self->reading_done &&
      dispatch_frames (self, NULL) == DISPATCH_NEED_BYTES && self->drain_left > 0)
    {
      read_available (self, 0, self->drain_left, NULL, &total);
      self->drain_left -= MIN (total, self->drain_left);
    }

  /* A large value is being checked: the drain goes on once it is (unless
   * it must end now). */
  if (self->checking != NULL && !self->closed && !self->reading_done && !self->drain_now)
    return;

  /* The writer is dead: a frame it began is never finished. */
  if (!self->closed && !self->reading_done && arip_frame_decoder_has_partial (self->decoder))
    {
      g_autoptr(GError) truncated =
        g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                     _("the channel was closed in the middle of a frame"));
      finish_reading (self, truncated);
    }

  self->draining = FALSE;
  self->drain_now = FALSE;
  done = g_steal_pointer (&self->drained_func);
  if (done != NULL)
    done (self, self->drained_data);
}

void
arip_channel_drain (AripChannel            *self,
                    gsize                   max_bytes,
                    AripChannelDrainedFunc  done,
                    gpointer                user_data)
{
  g_return_if_fail (!self->draining);

  self->draining = TRUE;
  self->drain_left = max_bytes;
  self->drained_func = done;
  self->drained_data = user_data;
  if (self->in_source != NULL)
    {
      /* Nothing reads on its own any more: only the drain. */
      g_source_destroy (self->in_source);
      g_clear_pointer (&self->in_source, g_source_unref);
    }

  arip_channel_ref (self);
  continue_drain (self);
  arip_channel_unref (self);
}

void
arip_channel_drain_now (AripChannel *self)
{
  if (!self->draining)
    return;

  arip_channel_ref (self);
  self->drain_now = TRUE;
  continue_drain (self);
  arip_channel_unref (self);
}

/* Writes what the socket takes now. FALSE with @error on a real failure. */
#define MAX_GATHER 16

/* Writes what the socket takes now, several queued frames per sendmsg()
 * when they carry no descriptors. FALSE with @error on a failure
 * (G_IO_ERROR_WOULD_BLOCK when the socket is full). */
static gboolean
write_available (AripChannel  *self,
                 GError      **error)
{
  while (!g_queue_is_empty (&self->out_queue))
    {
      struct iovec vectors[MAX_GATHER];
      union {
        char buf[CMSG_SPACE (sizeof (int) * ARIP_FRAME_MAX_FDS)];
        struct cmsghdr align;
      } control;
      struct msghdr msg = { 0 };
      guint n_vectors = 0;
      gssize n;

      for (GList *l = self->out_queue.head; l != NULL && n_vectors < MAX_GATHER; l = l->next)
        {
          OutFrame *out = l->data;
          gsize size;

          /* Descriptors go with the first byte of their frame, so a frame
           * with descriptors starts a sendmsg() of its own. */
          if (n_vectors > 0 && out->fds != NULL)
            break;
          if (n_vectors == 0 && out->offset == 0 && out->fds != NULL)
            {
              gint n_fds = 0;
              const gint *fds = g_unix_fd_list_peek_fds (out->fds, &n_fds);
              struct cmsghdr *c;

              memset (control.buf, 0, sizeof control.buf);
              msg.msg_control = control.buf;
              msg.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
              c = (struct cmsghdr *) control.buf;
              c->cmsg_level = SOL_SOCKET;
              c->cmsg_type = SCM_RIGHTS;
              c->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
              memcpy (CMSG_DATA (c), fds, sizeof (int) * n_fds);
            }

          vectors[n_vectors].iov_base = (guint8 *) g_bytes_get_data (out->data, &size) + out->offset;
          vectors[n_vectors].iov_len = size - out->offset;
          n_vectors++;
        }

      msg.msg_iov = vectors;
      msg.msg_iovlen = n_vectors;

      do
        n = sendmsg (self->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      while (n < 0 && errno == EINTR);

      if (n < 0)
        {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "sendmsg: EAGAIN");
          else
            set_errno_error (error, errno, "sendmsg");
          return FALSE;
        }

      while (n > 0)
        {
          OutFrame *out = g_queue_peek_head (&self->out_queue);
          gsize size = g_bytes_get_size (out->data);
          gsize taken = MIN ((gsize) n, size - out->offset);

          out->offset += taken;
          self->out_bytes -= taken;
          n -= taken;
          if (out->offset == size)
            {
              self->out_bytes -= out->extra;
              out_frame_free (g_queue_pop_head (&self->out_queue));
            }
        }
    }

  return TRUE;
}

static gboolean
on_writable (gint          fd,
             GIOCondition  condition,
             gpointer      user_data)
{
  AripChannel *self = user_data;
  g_autoptr(GError) error = NULL;

  if (write_available (self, &error))
    {
      g_clear_pointer (&self->out_source, g_source_unref);
      return G_SOURCE_REMOVE;
    }

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;

  /* The peer is gone; what we meant to tell it no longer matters, and the
   * reading side reports the end. */
  g_debug ("Writing to the channel failed: %s", error->message);
  self->write_failed = TRUE;
  g_queue_clear_full (&self->out_queue, out_frame_free);
  self->out_bytes = 0;
  g_clear_pointer (&self->out_source, g_source_unref);
  return G_SOURCE_REMOVE;
}

static gboolean
send_bytes_full (AripChannel  *self,
                 GBytes       *data,
                 GUnixFDList  *fds,
                 gsize         extra,
                 GError      **error)
{
  g_autoptr(GError) local_error = NULL;
  OutFrame *out;

  g_return_val_if_fail (self != NULL, FALSE);

  if (data == NULL)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
                   _("The data is larger than the limit of %u bytes"), ARIP_FRAME_MAX_SIZE);
      return FALSE;
    }

  if (self->closed || self->write_failed)
    {
      g_bytes_unref (data);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("The channel is closed"));
      return FALSE;
    }

  out = g_new0 (OutFrame, 1);
  out->data = data;
  out->fds = fds != NULL ? g_object_ref (fds) : NULL;
  out->extra = extra;
  g_queue_push_tail (&self->out_queue, out);
  self->out_bytes += g_bytes_get_size (data) + extra;

  /* Pending output, or a writer that flushes: frames gather and leave
   * together. */
  if (self->out_source != NULL || self->sync_writes)
    return TRUE;

  if (write_available (self, &local_error))
    return TRUE;

  if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      self->write_failed = TRUE;
      g_queue_clear_full (&self->out_queue, out_frame_free);
      self->out_bytes = 0;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  if (self->context != NULL && !self->sync_writes)
    {
      self->out_source = g_unix_fd_source_new (self->fd, G_IO_OUT);
      g_source_set_callback (self->out_source, G_SOURCE_FUNC (on_writable), self, NULL);
      g_source_set_static_name (self->out_source, "[arip] channel write");
      g_source_attach (self->out_source, self->context);
    }

  return TRUE;
}

gboolean
arip_channel_send_bytes (AripChannel  *self,
                         GBytes       *data,
                         GUnixFDList  *fds,
                         GError      **error)
{
  return send_bytes_full (self, data, fds, 0, error);
}

/* A sealed memfd holding @value, as the list of one descriptor. */
static GUnixFDList *
memfd_list_for (GVariant  *value,
                GError   **error)
{
  gint fd = arip_memfd_new_for_value (value, error);

  return fd >= 0 ? g_unix_fd_list_new_from_array (&fd, 1) : NULL;
}

/* @fds (nullable) with @memfd_list's one descriptor after them. */
static GUnixFDList *
append_memfd (GUnixFDList *fds,
              GUnixFDList *memfd_list)
{
  GUnixFDList *all;
  gint n = 0;
  const gint *user = fds != NULL ? g_unix_fd_list_peek_fds (fds, &n) : NULL;

  if (fds == NULL)
    return g_object_ref (memfd_list);
  all = g_unix_fd_list_new ();
  for (gint i = 0; i < n; i++)
    if (g_unix_fd_list_append (all, user[i], NULL) < 0)
      {
        g_object_unref (all);
        return NULL;
      }
  if (g_unix_fd_list_append (all, g_unix_fd_list_peek_fds (memfd_list, NULL)[0], NULL) < 0)
    {
      g_object_unref (all);
      return NULL;
    }
  return all;
}

static guint
fds_length (GUnixFDList *fds)
{
  return fds != NULL ? (guint) g_unix_fd_list_get_length (fds) : 0;
}

static gboolean
check_fds_count (GUnixFDList  *fds,
                 guint         extra,
                 GError      **error)
{
  if (fds_length (fds) + extra <= ARIP_FRAME_MAX_FDS)
    return TRUE;
  g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
               _("A value can carry at most %u file descriptors, not %u"),
               ARIP_FRAME_MAX_FDS - extra, fds_length (fds));
  return FALSE;
}

gboolean
arip_channel_send_value_with_fds (AripChannel    *self,
                                  AripFrameKind   kind,
                                  GVariant       *value,
                                  GUnixFDList    *fds,
                                  GError        **error)
{
  g_autoptr(GVariant) normal = normal_value (value);
  g_autoptr(GUnixFDList) memfd = NULL;
  g_autoptr(GUnixFDList) all = NULL;
  gsize size = g_variant_get_size (normal);

  g_return_val_if_fail (kind == ARIP_FRAME_RESULT || kind == ARIP_FRAME_MESSAGE, FALSE);

  if (!check_fds_count (fds, 1, error))
    return FALSE;
  if (size < ARIP_MEMFD_MIN_SIZE)
    return send_bytes_full (self, arip_frame_encode_value (kind, normal, fds_length (fds)), fds, 0,
                            error);

  if (size > ARIP_FRAME_MAX_SIZE)
    return send_bytes_full (self, NULL, NULL, 0, error);
  memfd = memfd_list_for (normal, error);
  if (memfd == NULL)
    return FALSE;
  all = append_memfd (fds, memfd);
  if (all == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES,
                           _("Out of file descriptors"));
      return FALSE;
    }
  /* The memfd holds its pages until the peer is done with the message,
   * which it says with a CONSUMED frame: until then they count as queued.
   * (A result is the last thing a worker sends: nobody waits on it.) */
  if (kind == ARIP_FRAME_MESSAGE)
    self->in_flight += size;
  return send_bytes_full (self,
                          arip_frame_encode (kind == ARIP_FRAME_RESULT ? ARIP_FRAME_RESULT_MEMFD
                                                                       : ARIP_FRAME_MESSAGE_MEMFD,
                                             g_variant_new ("(ts)", (guint64) size,
                                                            g_variant_get_type_string (normal)),
                                             fds_length (all)),
                          all, size, error);
}

gboolean
arip_channel_send_value (AripChannel    *self,
                         AripFrameKind   kind,
                         GVariant       *value,
                         GError        **error)
{
  return arip_channel_send_value_with_fds (self, kind, value, NULL, error);
}

gboolean
arip_channel_send_call_with_fds (AripChannel  *self,
                                 const char   *function,
                                 GVariant     *args,
                                 GUnixFDList  *fds,
                                 GError      **error)
{
  g_autoptr(GVariant) normal = normal_value (args);
  g_autoptr(GUnixFDList) memfd = NULL;
  g_autoptr(GUnixFDList) all = NULL;
  gsize size = g_variant_get_size (normal);

  if (!check_fds_count (fds, 1, error))
    return FALSE;
  if (size < ARIP_MEMFD_MIN_SIZE)
    return send_bytes_full (self, arip_frame_encode_call (function, normal, fds_length (fds)),
                            fds, 0, error);

  if (size > ARIP_FRAME_MAX_SIZE)
    return send_bytes_full (self, NULL, NULL, 0, error);
  memfd = memfd_list_for (normal, error);
  if (memfd == NULL)
    return FALSE;
  all = append_memfd (fds, memfd);
  if (all == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES,
                           _("Out of file descriptors"));
      return FALSE;
    }
  return send_bytes_full (self,
                          arip_frame_encode (ARIP_FRAME_CALL_MEMFD,
                                             g_variant_new ("(sts)", function, (guint64) size,
                                                            g_variant_get_type_string (normal)),
                                             fds_length (all)),
                          all, size, error);
}

gboolean
arip_channel_send_call (AripChannel  *self,
                        const char   *function,
                        GVariant     *args,
                        GError      **error)
{
  return arip_channel_send_call_with_fds (self, function, args, NULL, error);
}

static gboolean
handles_fit (GVariant *value,
             gint      n_fds)
{
  const char *type = g_variant_get_type_string (value);
  GVariantIter iter;
  GVariant *child;

  if (g_variant_is_of_type (value, G_VARIANT_TYPE_HANDLE))
    {
      gint32 index = g_variant_get_handle (value);

      return index >= 0 && index < n_fds;
    }
  if (!g_variant_is_container (value) || (strchr (type, 'h') == NULL && strchr (type, 'v') == NULL))
    return TRUE;
  g_variant_iter_init (&iter, value);
  while ((child = g_variant_iter_next_value (&iter)) != NULL)
    {
      gboolean fits = handles_fit (child, n_fds);

      g_variant_unref (child);
      if (!fits)
        return FALSE;
    }
  return TRUE;
}

gboolean
arip_variant_check_handles (GVariant     *value,
                            GUnixFDList  *fds,
                            GError      **error)
{
  if (value == NULL || handles_fit (value, (gint) fds_length (fds)))
    return TRUE;
  g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
               _("A handle in a value of type “%s” indexes none of the %u file descriptors "
                 "that came with it"),
               g_variant_get_type_string (value), fds_length (fds));
  return FALSE;
}

gboolean
arip_channel_send (AripChannel    *self,
                   AripFrameKind   kind,
                   GVariant       *payload,
                   GUnixFDList    *fds,
                   GError        **error)
{
  guint n_fds = fds != NULL ? (guint) g_unix_fd_list_get_length (fds) : 0;
  GBytes *data;

  g_return_val_if_fail (self != NULL, FALSE);

  if (n_fds > ARIP_FRAME_MAX_FDS)
    {
      g_variant_unref (g_variant_ref_sink (payload));
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
                   _("A message can carry at most %u file descriptors, not %u"),
                   ARIP_FRAME_MAX_FDS, n_fds);
      return FALSE;
    }

  data = arip_frame_encode (kind, payload, n_fds);
  if (data == NULL)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
                   _("The %s is larger than the limit of %u bytes"),
                   arip_frame_kind_to_string (kind), ARIP_FRAME_MAX_SIZE);
      return FALSE;
    }

  return arip_channel_send_bytes (self, data, fds, error);
}

void
arip_channel_set_sync_writes (AripChannel *self,
                              gboolean     sync_writes)
{
  self->sync_writes = !!sync_writes;
}

gboolean
arip_channel_flush_sync (AripChannel  *self,
                         GError      **error)
{
  if (self->out_source != NULL)
    {
      g_source_destroy (self->out_source);
      g_clear_pointer (&self->out_source, g_source_unref);
    }

  while (!g_queue_is_empty (&self->out_queue))
    {
      g_autoptr(GError) local_error = NULL;

      if (write_available (self, &local_error))
        break;

      if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }

      if (!wait_for (self, POLLOUT, error))
        return FALSE;
    }

  return TRUE;
}

void
arip_channel_set_handlers (AripChannel           *self,
                           AripChannelFrameFunc   frame_func,
                           AripChannelClosedFunc  closed_func,
                           gpointer               user_data)
{
  self->frame_func = frame_func;
  self->closed_func = closed_func;
  self->user_data = user_data;
}

gboolean
arip_channel_read_nowait (AripChannel *self)
{
  DispatchResult r;

  if (self->closed || self->reading_done)
    return FALSE;
  arip_channel_ref (self);
  r = read_available (self, 0, 0, NULL, NULL);
  arip_channel_unref (self);
  return r != DISPATCH_OVER;
}

gboolean
arip_channel_flush_nowait (AripChannel  *self,
                           GError      **error)
{
  if (self->write_failed)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, _("The channel is closed"));
      return FALSE;
    }
  if (g_queue_is_empty (&self->out_queue))
    return TRUE;
  return write_available (self, error);
}

AripFrame *
arip_channel_receive_sync (AripChannel  *self,
                           GError      **error)
{
  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      AripFrame *frame = NULL;
      gssize n;

      if (!arip_frame_decoder_next (self->decoder, &frame, error))
        return NULL;
      if (frame != NULL)
        {
          /* What came with it is for the async reader, which only hears
           * of new bytes on the socket: tell it. */
          if (self->in_source != NULL && arip_frame_decoder_has_partial (self->decoder))
            g_source_set_ready_time (self->in_source, 0);
          return frame;
        }

      /* The peer answers what we just sent: it is rarely there yet, so
       * wait first rather than read, fail and wait. */
      if (!wait_for (self, POLLIN, error))
        return NULL;

      n = read_once (self, 0, &local_error);
      if (n == 0)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                       _("The other end closed the channel"));
          return NULL;
        }
      if (n < 0)
        {
          if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_propagate_error (error, g_steal_pointer (&local_error));
              return NULL;
            }
          if (!wait_for (self, POLLIN, error))
            return NULL;
        }
    }
}

void
arip_channel_close (AripChannel *self)
{
  if (self->closed)
    return;
  self->closed = TRUE;

  if (self->in_source != NULL)
    {
      g_source_destroy (self->in_source);
      g_clear_pointer (&self->in_source, g_source_unref);
    }
  if (self->out_source != NULL)
    {
      g_source_destroy (self->out_source);
      g_clear_pointer (&self->out_source, g_source_unref);
    }
  g_queue_clear_full (&self->out_queue, out_frame_free);
  self->out_bytes = 0;
  g_clear_pointer (&self->decoder, arip_frame_decoder_free);
  g_clear_pointer (&self->context, g_main_context_unref);
  if (self->fd >= 0)
    {
      close (self->fd);
      self->fd = -1;
    }
}
