/* test-channel.c: the frame codec and the channel, on their own
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include <arip.h>
#include "arip-channel-private.h"

#include "arip-test-util.h"

typedef struct {
  AripFrameKind  kind;
  const char    *text;   /* payload in GVariant text format */
} Sample;

static const Sample samples[] = {
  { ARIP_FRAME_HELLO, "(uint32 1, 1234)" },
  { ARIP_FRAME_STATE, "(uint32 5,)" },
  { ARIP_FRAME_CALL, "('fib', <(int32 30,)>)" },
  { ARIP_FRAME_RESULT, "(<(uint64 832040, 'done', [1.5, 2.5])>,)" },
  { ARIP_FRAME_ERROR, "('g-io-error-quark', 1, 'Not found')" },
  { ARIP_FRAME_MESSAGE, "(<{'key': <'value'>}>,)" },
  { ARIP_FRAME_PROGRESS, "(0.5,)" },
  { ARIP_FRAME_RESULT, "(<()>,)" },
  { ARIP_FRAME_MESSAGE, "(<@ms nothing>,)" },
};

static GVariant *
sample_payload (const Sample *s)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = g_variant_parse (arip_frame_kind_get_type (s->kind), s->text, NULL, NULL, &error);
  g_autoptr(GBytes) bytes = NULL;

  g_assert_no_error (error);
  /* g_variant_parse() returns a full reference; callers want a floating
   * one, as from g_variant_new(). */
  bytes = g_variant_get_data_as_bytes (v);
  return g_variant_new_from_bytes (g_variant_get_type (v), bytes, TRUE);
}

static GBytes *
encode_samples (void)
{
  g_autoptr(GByteArray) all = g_byte_array_new ();

  for (guint i = 0; i < G_N_ELEMENTS (samples); i++)
    {
      g_autoptr(GBytes) b = arip_frame_encode (samples[i].kind, sample_payload (&samples[i]), 0);
      gsize len;
      const guint8 *data = g_bytes_get_data (b, &len);

      g_assert_cmpuint (len, >=, ARIP_FRAME_HEADER_SIZE);
      g_byte_array_append (all, data, len);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&all));
}

static void
assert_frame_is_sample (AripFrame *frame, guint i)
{
  g_autoptr(GVariant) expected = g_variant_ref_sink (sample_payload (&samples[i]));

  g_assert_nonnull (frame);
  g_assert_cmpint (frame->kind, ==, samples[i].kind);
  g_assert_true (g_variant_is_of_type (arip_frame_get_payload (frame), arip_frame_kind_get_type (samples[i].kind)));
  g_assert_true (g_variant_is_normal_form (arip_frame_get_payload (frame)));
  g_assert_true (g_variant_equal (arip_frame_get_payload (frame), expected));
  g_assert_null (frame->fds);
}

static void
test_kinds (void)
{
  const char *types[] = { NULL, "(ui)", "(u)", "(sv)", "(v)", "(sis)", "(v)", "(d)", "(ts)", "(ts)", "(sts)", "(t)",
                          "(u)", "(uutv)", "(ubv)", "(usis)", "(tsv)", "(uubas)" };

  for (guint k = ARIP_FRAME_HELLO; k <= ARIP_FRAME_LAST_KIND; k++)
    {
      g_assert_cmpstr (g_variant_type_peek_string (arip_frame_kind_get_type (k)), ==, types[k]);
      g_assert_nonnull (arip_frame_kind_to_string (k));
    }
}

static void
test_encode_header (void)
{
  g_autoptr(GVariant) payload = g_variant_ref_sink (g_variant_new ("(ui)", 1, 4321));
  g_autoptr(GBytes) b = arip_frame_encode (ARIP_FRAME_HELLO, payload, 3);
  struct { guint32 size; guint16 kind; guint16 n_fds; } header;
  gsize len;
  const guint8 *data = g_bytes_get_data (b, &len);

  g_assert_cmpuint (len, ==, ARIP_FRAME_HEADER_SIZE + g_variant_get_size (payload));
  memcpy (&header, data, sizeof header);
  g_assert_cmpuint (header.size, ==, g_variant_get_size (payload));
  g_assert_cmpuint (header.kind, ==, ARIP_FRAME_HELLO);
  g_assert_cmpuint (header.n_fds, ==, 3);
  g_assert_cmpmem (data + ARIP_FRAME_HEADER_SIZE, len - ARIP_FRAME_HEADER_SIZE,
                   g_variant_get_data (payload), g_variant_get_size (payload));
}

static void
test_round_trip (void)
{
  g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
  g_autoptr(GBytes) all = encode_samples ();
  g_autoptr(GError) error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (all, &len);
  AripFrame *frame = NULL;

  g_assert_true (arip_frame_decoder_next (decoder, &frame, &error));
  g_assert_no_error (error);
  g_assert_null (frame);
  g_assert_false (arip_frame_decoder_has_partial (decoder));

  arip_frame_decoder_feed (decoder, data, len);
  for (guint i = 0; i < G_N_ELEMENTS (samples); i++)
    {
      g_autoptr(AripFrame) f = NULL;

      g_assert_true (arip_frame_decoder_next (decoder, &f, &error));
      g_assert_no_error (error);
      assert_frame_is_sample (f, i);
    }
  g_assert_true (arip_frame_decoder_next (decoder, &frame, &error));
  g_assert_no_error (error);
  g_assert_null (frame);
  g_assert_false (arip_frame_decoder_has_partial (decoder));
}

static void
test_byte_at_a_time (void)
{
  g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
  g_autoptr(GBytes) all = encode_samples ();
  gsize len;
  const guint8 *data = g_bytes_get_data (all, &len);
  guint n_frames = 0;

  for (gsize pos = 0; pos < len; pos++)
    {
      arip_frame_decoder_feed (decoder, data + pos, 1);
      g_assert_true (arip_frame_decoder_has_partial (decoder));

      for (;;)
        {
          g_autoptr(GError) error = NULL;
          AripFrame *frame = NULL;

          g_assert_true (arip_frame_decoder_next (decoder, &frame, &error));
          g_assert_no_error (error);
          if (frame == NULL)
            break;
          g_assert_cmpuint (n_frames, <, G_N_ELEMENTS (samples));
          assert_frame_is_sample (frame, n_frames);
          n_frames++;
          arip_frame_free (frame);
        }
    }
  g_assert_cmpuint (n_frames, ==, G_N_ELEMENTS (samples));
  g_assert_false (arip_frame_decoder_has_partial (decoder));
}

static void
test_prepare_commit (void)
{
  g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
  g_autoptr(GBytes) all = encode_samples ();
  gsize len;
  const guint8 *data = g_bytes_get_data (all, &len);
  gsize pos = 0;
  guint n_frames = 0;

  /* Odd-sized pieces through the zero-copy path. */
  while (pos < len)
    {
      gsize room = 0;
      guint8 *dest = arip_frame_decoder_prepare (decoder, &room);
      gsize n = MIN (MIN (room, (gsize) 7), len - pos);

      g_assert_nonnull (dest);
      g_assert_cmpuint (room, >, 0);
      memcpy (dest, data + pos, n);
      arip_frame_decoder_commit (decoder, n);
      pos += n;

      for (;;)
        {
          g_autoptr(GError) error = NULL;
          AripFrame *frame = NULL;

          g_assert_true (arip_frame_decoder_next (decoder, &frame, &error));
          g_assert_no_error (error);
          if (frame == NULL)
            break;
          assert_frame_is_sample (frame, n_frames++);
          arip_frame_free (frame);
        }
    }
  g_assert_cmpuint (n_frames, ==, G_N_ELEMENTS (samples));
}

static void
test_large_frame (void)
{
  const gsize size = 3 * 1024 * 1024 + 17;
  g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
  g_autofree guint8 *blob = g_malloc (size);
  g_autoptr(GVariant) inner = NULL;
  g_autoptr(GBytes) encoded = NULL;
  g_autoptr(AripFrame) frame = NULL;
  g_autoptr(GVariant) got = NULL;
  g_autoptr(GError) error = NULL;
  const guint8 *data;
  gsize len, pos = 0;

  for (gsize i = 0; i < size; i++)
    blob[i] = (guint8) (i * 31 + (i >> 9));
  inner = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, blob, size, 1));
  encoded = arip_frame_encode (ARIP_FRAME_RESULT, g_variant_new ("(v)", inner), 0);
  data = g_bytes_get_data (encoded, &len);

  /* In chunks of the size a socket read gives. */
  while (pos < len)
    {
      gsize n = MIN ((gsize) 200000, len - pos);

      arip_frame_decoder_feed (decoder, data + pos, n);
      pos += n;
      g_assert_true (arip_frame_decoder_next (decoder, &frame, &error));
      g_assert_no_error (error);
      if (pos < len)
        g_assert_null (frame);
    }
  g_assert_nonnull (frame);
  g_variant_get (arip_frame_get_payload (frame), "(v)", &got);
  g_assert_true (g_variant_equal (got, inner));
}

static gsize
heap_in_use (void)
{
  struct mallinfo2 info = mallinfo2 ();

  return info.uordblks + info.hblkhd;
}

static void
test_huge_header_not_allocated (void)
{
  g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
  struct { guint32 size; guint16 kind; guint16 n_fds; } header = { ARIP_FRAME_MAX_SIZE, ARIP_FRAME_RESULT, 0 };
  g_autoptr(GError) error = NULL;
  AripFrame *frame = NULL;
  guint8 some[1000] = { 0 };
  gsize before, after;

  /* A header announcing the largest allowed frame: the decoder waits for
   * the bytes, it does not reserve 512 MiB for them. */
  before = heap_in_use ();
  arip_frame_decoder_feed (decoder, (const guint8 *) &header, sizeof header);
  arip_frame_decoder_feed (decoder, some, sizeof some);
  g_assert_true (arip_frame_decoder_next (decoder, &frame, &error));
  g_assert_no_error (error);
  g_assert_null (frame);
  g_assert_true (arip_frame_decoder_has_partial (decoder));
  for (guint i = 0; i < 4; i++)
    {
      gsize room = 0;

      arip_frame_decoder_prepare (decoder, &room);
      arip_frame_decoder_commit (decoder, 0);
    }
  after = heap_in_use ();
  g_test_message ("heap grew by %" G_GSIZE_FORMAT " bytes", after > before ? after - before : 0);
  g_assert_cmpuint (after, <, before + 4 * 1024 * 1024);
}

static void
feed_header (AripFrameDecoder *decoder, guint32 size, guint16 kind, guint16 n_fds)
{
  struct { guint32 size; guint16 kind; guint16 n_fds; } header = { size, kind, n_fds };

  arip_frame_decoder_feed (decoder, (const guint8 *) &header, sizeof header);
}

static void
assert_rejected (AripFrameDecoder *decoder)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) again = NULL;
  AripFrame *frame = NULL;

  g_assert_false (arip_frame_decoder_next (decoder, &frame, &error));
  g_assert_null (frame);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  g_test_message ("rejected: %s", error->message);

  /* Broken for good. */
  arip_frame_decoder_feed (decoder, (const guint8 *) "more", 4);
  g_assert_false (arip_frame_decoder_next (decoder, &frame, &again));
  g_assert_null (frame);
  g_assert_error (again, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
}

static void
test_reject_oversize (void)
{
  const guint32 sizes[] = { G_MAXUINT32, ARIP_FRAME_MAX_SIZE + 1u };

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);

      /* The header alone is enough to refuse. */
      feed_header (decoder, sizes[i], ARIP_FRAME_RESULT, 0);
      assert_rejected (decoder);
    }

  {
    /* A decoder's own, smaller limit. */
    g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (1024);

    feed_header (decoder, 1025, ARIP_FRAME_MESSAGE, 0);
    assert_rejected (decoder);
  }
}

static void
test_reject_unknown_kind (void)
{
  const guint16 kinds[] = { 0, ARIP_FRAME_LAST_KIND + 1, 0xffff };

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
      guint8 payload[4] = { 1, 0, 0, 0 };

      feed_header (decoder, sizeof payload, kinds[i], 0);
      arip_frame_decoder_feed (decoder, payload, sizeof payload);
      assert_rejected (decoder);
    }
}

static void
test_reject_wrong_type (void)
{
  struct {
    guint16     kind;
    const char *type;
    const char *text;
  } cases[] = {
    { ARIP_FRAME_STATE, "(s)", "('not a state',)" },
    { ARIP_FRAME_HELLO, "(u)", "(uint32 1,)" },
    { ARIP_FRAME_PROGRESS, "(u)", "(uint32 1,)" },
    { ARIP_FRAME_ERROR, "(s)", "('x',)" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
      g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE (cases[i].type),
                                               cases[i].text, NULL, NULL, NULL);
      g_assert_nonnull (v);
      feed_header (decoder, g_variant_get_size (v), cases[i].kind, 0);
      arip_frame_decoder_feed (decoder, g_variant_get_data (v), g_variant_get_size (v));
      assert_rejected (decoder);
    }

  {
    /* A (v) whose body is not a serialized variant. */
    g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);

    feed_header (decoder, 4, ARIP_FRAME_RESULT, 0);
    arip_frame_decoder_feed (decoder, (const guint8 *) "abcd", 4);
    assert_rejected (decoder);
  }
  {
    /* An empty payload where a fixed-size one is due. */
    g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);

    feed_header (decoder, 0, ARIP_FRAME_STATE, 0);
    assert_rejected (decoder);
  }
}

static void
test_reject_garbage (void)
{
  guint32 x = 12345u;

  for (guint round = 0; round < 50; round++)
    {
      g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
      guint8 garbage[256];
      gboolean rejected = FALSE;

      for (guint i = 0; i < sizeof garbage; i++)
        {
          x ^= x << 13;
          x ^= x >> 17;
          x ^= x << 5;
          garbage[i] = (guint8) x;
        }

      /* Never crashes; garbage either breaks the stream or leaves an
       * incomplete frame: never a frame that is not well-formed. */
      arip_frame_decoder_feed (decoder, garbage, sizeof garbage);
      for (guint n = 0; n < 100 && !rejected; n++)
        {
          g_autoptr(GError) error = NULL;
          AripFrame *frame = NULL;

          if (!arip_frame_decoder_next (decoder, &frame, &error))
            {
              g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
              rejected = TRUE;
            }
          else if (frame == NULL)
            break;
          else
            {
              g_assert_true (g_variant_is_normal_form (arip_frame_get_payload (frame)));
              g_assert_true (g_variant_is_of_type (arip_frame_get_payload (frame), arip_frame_kind_get_type (frame->kind)));
              arip_frame_free (frame);
            }
        }
      g_assert_true (rejected || arip_frame_decoder_has_partial (decoder));
    }

  {
    /* All ones: a 4 GiB frame of kind 0xffff. */
    g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
    guint8 ones[64];

    memset (ones, 0xff, sizeof ones);
    arip_frame_decoder_feed (decoder, ones, sizeof ones);
    assert_rejected (decoder);
  }
}

static void
test_reject_too_many_fds (void)
{
  g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);

  feed_header (decoder, 8, ARIP_FRAME_PROGRESS, ARIP_FRAME_MAX_FDS + 1);
  assert_rejected (decoder);
}

static void
test_reject_missing_fds (void)
{
  g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
  g_autoptr(GVariant) v = g_variant_ref_sink (g_variant_new ("(v)", g_variant_new_handle (0)));

  feed_header (decoder, g_variant_get_size (v), ARIP_FRAME_MESSAGE, 1);
  arip_frame_decoder_feed (decoder, g_variant_get_data (v), g_variant_get_size (v));
  assert_rejected (decoder);
}

static void
test_decoder_fds (void)
{
  g_autoptr(AripFrameDecoder) decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
  g_autoptr(GBytes) b = arip_frame_encode (ARIP_FRAME_MESSAGE,
                                           g_variant_new ("(v)", g_variant_new ("(hh)", 0, 1)), 2);
  g_autoptr(AripFrame) frame = NULL;
  g_autoptr(GError) error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (b, &len);
  gint fds[2];

  fds[0] = dup (0);
  fds[1] = dup (0);
  g_assert_cmpint (fds[0], >=, 0);
  g_assert_cmpint (fds[1], >=, 0);

  arip_frame_decoder_push_fds (decoder, fds, 2);
  arip_frame_decoder_feed (decoder, data, len);
  g_assert_true (arip_frame_decoder_next (decoder, &frame, &error));
  g_assert_no_error (error);
  g_assert_nonnull (frame);
  g_assert_nonnull (frame->fds);
  g_assert_cmpint (g_unix_fd_list_get_length (frame->fds), ==, 2);
}

/* ---------------------------------------------------------------------- */
/* The channel over a real socketpair                                      */

static void
make_pair (AripChannel **a, AripChannel **b)
{
  g_autoptr(GError) error = NULL;
  int sv[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
  *a = arip_channel_new (sv[0], &error);
  g_assert_no_error (error);
  g_assert_nonnull (*a);
  *b = arip_channel_new (sv[1], &error);
  g_assert_no_error (error);
  g_assert_nonnull (*b);
  g_assert_cmpint (arip_channel_get_fd (*a), ==, sv[0]);
  g_assert_cmpint (arip_channel_get_fd (*b), ==, sv[1]);
}

static void
test_channel_fds (void)
{
  g_autoptr(AripChannel) a = NULL;
  g_autoptr(AripChannel) b = NULL;
  g_autoptr(GUnixFDList) list = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(AripFrame) frame = NULL;
  g_autoptr(AripFrame) second = NULL;
  g_autoptr(GVariant) expected = NULL;
  int pipe_fds[2];
  int received;
  char buf[16] = { 0 };
  guint before = arip_test_count_fds ();

  make_pair (&a, &b);
  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_unix_fd_list_append (list, pipe_fds[1], &error), ==, 0);
  g_assert_no_error (error);
  close (pipe_fds[1]);

  expected = g_variant_ref_sink (g_variant_new ("(v)", g_variant_new ("(sh)", "the pipe", 0)));
  g_assert_true (arip_channel_send (a, ARIP_FRAME_MESSAGE, expected, list, &error));
  g_assert_no_error (error);
  g_assert_true (arip_channel_send (a, ARIP_FRAME_PROGRESS, g_variant_new ("(d)", 0.75), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (arip_channel_flush_sync (a, &error));
  g_assert_no_error (error);

  frame = arip_channel_receive_sync (b, &error);
  g_assert_no_error (error);
  g_assert_nonnull (frame);
  g_assert_cmpint (frame->kind, ==, ARIP_FRAME_MESSAGE);
  g_assert_true (g_variant_equal (arip_frame_get_payload (frame), expected));
  g_assert_nonnull (frame->fds);
  g_assert_cmpint (g_unix_fd_list_get_length (frame->fds), ==, 1);

  /* The descriptor that arrived is the pipe's write end. */
  received = g_unix_fd_list_get (frame->fds, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (write (received, "through", 7), ==, 7);
  close (received);
  g_clear_pointer (&frame, arip_frame_free);
  g_clear_object (&list);
  g_assert_cmpint (read (pipe_fds[0], buf, sizeof buf - 1), ==, 7);
  g_assert_cmpstr (buf, ==, "through");
  close (pipe_fds[0]);

  second = arip_channel_receive_sync (b, &error);
  g_assert_no_error (error);
  g_assert_nonnull (second);
  g_assert_cmpint (second->kind, ==, ARIP_FRAME_PROGRESS);
  g_assert_null (second->fds);
  g_clear_pointer (&second, arip_frame_free);

  /* The other end closes: receive reports it. */
  arip_channel_close (a);
  g_clear_pointer (&a, arip_channel_unref);
  second = arip_channel_receive_sync (b, &error);
  g_assert_null (second);
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_clear_pointer (&b, arip_channel_unref);

  g_assert_cmpuint (arip_test_count_fds (), ==, before);
}

typedef struct {
  GPtrArray *frames;
  gboolean   closed;
  GError    *error;
} Reader;

static void
on_frame (AripChannel *channel, AripFrame *frame, gpointer user_data)
{
  Reader *r = user_data;

  g_assert_false (r->closed);
  g_ptr_array_add (r->frames, g_variant_new ("(uv)", frame->kind, arip_frame_get_payload (frame)));
}

static void
on_closed (AripChannel *channel, const GError *error, gpointer user_data)
{
  Reader *r = user_data;

  g_assert_false (r->closed);
  r->closed = TRUE;
  r->error = error ? g_error_copy (error) : NULL;
}

static void
test_channel_async_read (void)
{
  g_autoptr(AripChannel) a = NULL;
  g_autoptr(AripChannel) b = NULL;
  g_autoptr(GError) error = NULL;
  Reader r = { g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref), FALSE, NULL };
  const guint n = 200;

  make_pair (&a, &b);
  arip_channel_start_reading (b, NULL, on_frame, on_closed, &r);
  arip_channel_start_reading (a, NULL, NULL, NULL, NULL);

  for (guint32 i = 0; i < n; i++)
    {
      g_assert_true (arip_channel_send (a, ARIP_FRAME_STATE, g_variant_new ("(u)", i), NULL, &error));
      g_assert_no_error (error);
    }
  g_assert_true (arip_channel_flush_sync (a, &error));
  g_assert_no_error (error);

  arip_test_wait_until (r.frames->len == n);
  for (guint32 i = 0; i < n; i++)
    {
      GVariant *got = r.frames->pdata[i];
      g_autoptr(GVariant) kind = g_variant_get_child_value (got, 0);
      g_autoptr(GVariant) boxed = g_variant_get_child_value (got, 1);
      g_autoptr(GVariant) payload = g_variant_get_variant (boxed);

      g_assert_cmpuint (g_variant_get_uint32 (kind), ==, ARIP_FRAME_STATE);
      arip_test_assert_variant (payload, g_variant_new ("(u)", i));
    }
  g_assert_false (r.closed);

  /* A clean close is reported once, without an error. */
  arip_channel_close (a);
  arip_test_wait_until (r.closed);
  g_assert_no_error (r.error);
  g_assert_cmpuint (r.frames->len, ==, n);

  g_ptr_array_unref (r.frames);
}

static void
test_channel_async_garbage (void)
{
  int sv[2];
  g_autoptr(AripChannel) b = NULL;
  g_autoptr(GError) error = NULL;
  Reader r = { g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref), FALSE, NULL };
  g_autoptr(GBytes) hello = arip_frame_encode (ARIP_FRAME_HELLO, g_variant_new ("(ui)", 1, 99), 0);
  gsize len;
  const guint8 *data = g_bytes_get_data (hello, &len);
  guint8 ones[32];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
  b = arip_channel_new (sv[1], &error);
  g_assert_no_error (error);
  arip_channel_start_reading (b, NULL, on_frame, on_closed, &r);

  /* One good frame, then garbage: the good one is delivered, then the
   * channel closes with INVALID_DATA, even though the peer stays open. */
  g_assert_cmpint (write (sv[0], data, len), ==, (gssize) len);
  memset (ones, 0xff, sizeof ones);
  g_assert_cmpint (write (sv[0], ones, sizeof ones), ==, sizeof ones);

  arip_test_wait_until (r.closed);
  g_assert_cmpuint (r.frames->len, ==, 1);
  g_assert_error (r.error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  g_clear_error (&r.error);
  close (sv[0]);
  g_ptr_array_unref (r.frames);
}

static void
test_channel_truncated (void)
{
  int sv[2];
  g_autoptr(AripChannel) b = NULL;
  g_autoptr(GError) error = NULL;
  Reader r = { g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref), FALSE, NULL };
  g_autoptr(GBytes) frame = arip_frame_encode (ARIP_FRAME_ERROR,
                                               g_variant_new ("(sis)", "some-domain", 3, "a message"), 0);
  gsize len;
  const guint8 *data = g_bytes_get_data (frame, &len);

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
  b = arip_channel_new (sv[1], &error);
  g_assert_no_error (error);
  arip_channel_start_reading (b, NULL, on_frame, on_closed, &r);

  g_assert_cmpint (write (sv[0], data, len - 3), ==, (gssize) len - 3);
  close (sv[0]);

  arip_test_wait_until (r.closed);
  g_assert_cmpuint (r.frames->len, ==, 0);
  g_assert_error (r.error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  g_clear_error (&r.error);
  g_ptr_array_unref (r.frames);
}

static void
test_channel_not_a_socket (void)
{
  g_autoptr(GError) error = NULL;
  int pipe_fds[2];
  AripChannel *channel;

  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, &error));
  channel = arip_channel_new (pipe_fds[0], &error);
  g_assert_null (channel);
  g_assert_nonnull (error);
  close (pipe_fds[1]);
}

/* The shared objects' frames, built by hand, are the bytes GVariant
 * builds. */
static void
test_encode_request_reply (void)
{
  const char *values[] = { "()", "'text'", "(uint32 7, @mv nothing)", "[byte 1, 2, 3]",
                           "<(int64 -5, 'x')>", "{'k': <1.5>}" };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    for (guint flag = 0; flag < 2; flag++)
      {
        g_autoptr(GVariant) value = g_variant_ref_sink (g_variant_new_parsed (values[i]));
        g_autoptr(GBytes) request = arip_frame_encode_request (9, 23, G_GUINT64_CONSTANT (1) << 40,
                                                               value, flag);
        g_autoptr(GBytes) request_ref =
          arip_frame_encode (ARIP_FRAME_REQUEST,
                             g_variant_new ("(uutv)", 9, 23, G_GUINT64_CONSTANT (1) << 40, value),
                             flag);
        g_autoptr(GBytes) reply = arip_frame_encode_reply (12, flag, value, 0);
        g_autoptr(GBytes) reply_ref =
          arip_frame_encode (ARIP_FRAME_REPLY, g_variant_new ("(ubv)", 12, flag, value), 0);

        g_assert_true (g_bytes_equal (request, request_ref));
        g_assert_true (g_bytes_equal (reply, reply_ref));
      }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/Channel/kinds", test_kinds);
  g_test_add_func ("/Arip/Channel/encode-header", test_encode_header);
  g_test_add_func ("/Arip/Channel/encode-request-reply", test_encode_request_reply);
  g_test_add_func ("/Arip/Channel/round-trip", test_round_trip);
  g_test_add_func ("/Arip/Channel/byte-at-a-time", test_byte_at_a_time);
  g_test_add_func ("/Arip/Channel/prepare-commit", test_prepare_commit);
  g_test_add_func ("/Arip/Channel/large-frame", test_large_frame);
  g_test_add_func ("/Arip/Channel/huge-header-not-allocated", test_huge_header_not_allocated);
  g_test_add_func ("/Arip/Channel/reject/oversize", test_reject_oversize);
  g_test_add_func ("/Arip/Channel/reject/unknown-kind", test_reject_unknown_kind);
  g_test_add_func ("/Arip/Channel/reject/wrong-type", test_reject_wrong_type);
  g_test_add_func ("/Arip/Channel/reject/garbage", test_reject_garbage);
  g_test_add_func ("/Arip/Channel/reject/too-many-fds", test_reject_too_many_fds);
  g_test_add_func ("/Arip/Channel/reject/missing-fds", test_reject_missing_fds);
  g_test_add_func ("/Arip/Channel/decoder-fds", test_decoder_fds);
  g_test_add_func ("/Arip/Channel/socket/fds", test_channel_fds);
  g_test_add_func ("/Arip/Channel/socket/async-read", test_channel_async_read);
  g_test_add_func ("/Arip/Channel/socket/garbage", test_channel_async_garbage);
  g_test_add_func ("/Arip/Channel/socket/truncated", test_channel_truncated);
  g_test_add_func ("/Arip/Channel/socket/not-a-socket", test_channel_not_a_socket);

  return g_test_run ();
}
