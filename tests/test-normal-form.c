/* test-normal-form.c: arip's normal-form check against GLib's
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Random types, random values of them serialized by GLib, and those bytes
 * damaged at random: arip_normal_form_check_full() must never call normal what
 * g_variant_is_normal_form() refuses (a hostile child's value would then be
 * trusted), nor refuse what GLib calls normal (a good value would be
 * lost). And it must decide most good values itself, fast for large
 * fixed arrays: otherwise it is no use.
 */
#include <string.h>

#include <arip.h>

#include "arip-normal-form-private.h"

#include "arip-test-util.h"

/* A random definite type string, at most @depth containers deep. */
static void
random_type (GRand   *rand,
             GString *type,
             guint    depth)
{
  static const char basic[] = "bynqiuxtdhsog";
  guint pick = g_rand_int_range (rand, 0, depth == 0 ? 3 : 10);

  switch (pick)
    {
    case 0: case 1:
      g_string_append_c (type, basic[g_rand_int_range (rand, 0, sizeof basic - 1)]);
      break;
    case 2:
      g_string_append_c (type, 'v');
      break;
    case 3: case 4:
      g_string_append_c (type, 'a');
      random_type (rand, type, depth - 1);
      break;
    case 5:
      g_string_append_c (type, 'm');
      random_type (rand, type, depth - 1);
      break;
    case 6:
      g_string_append (type, "a{");
      g_string_append_c (type, basic[g_rand_int_range (rand, 0, sizeof basic - 1)]);
      random_type (rand, type, depth - 1);
      g_string_append_c (type, '}');
      break;
    default:
      {
        guint n = g_rand_int_range (rand, 0, 4);

        g_string_append_c (type, '(');
        for (guint i = 0; i < n; i++)
          random_type (rand, type, depth - 1);
        g_string_append_c (type, ')');
      }
    }
}

static GVariant *random_value (GRand *rand, const GVariantType *type, guint depth);

/* How many elements an array gets at most: a few, or, for some rounds,
 * enough for values past 255 and 65535 bytes (wider offsets). */
static guint max_elements = 5;

static char *
random_string (GRand *rand)
{
  static const char *const pieces[] = { "", "a", "zé", "arip", "∂x", "\t", "0123456789" };
  GString *s = g_string_new (NULL);
  guint n = g_rand_int_range (rand, 0, 4);

  for (guint i = 0; i < n; i++)
    g_string_append (s, pieces[g_rand_int_range (rand, 0, G_N_ELEMENTS (pieces))]);
  return g_string_free (s, FALSE);
}

static GVariant *
random_value (GRand              *rand,
              const GVariantType *type,
              guint               depth)
{
  if (g_variant_type_is_basic (type))
    {
      switch (g_variant_type_peek_string (type)[0])
        {
        case 'b': return g_variant_new_boolean (g_rand_boolean (rand));
        case 'y': return g_variant_new_byte ((guchar) g_rand_int (rand));
        case 'n': return g_variant_new_int16 ((gint16) g_rand_int (rand));
        case 'q': return g_variant_new_uint16 ((guint16) g_rand_int (rand));
        case 'i': return g_variant_new_int32 ((gint32) g_rand_int (rand));
        case 'u': return g_variant_new_uint32 (g_rand_int (rand));
        case 'x': return g_variant_new_int64 ((gint64) g_rand_int (rand) << 20);
        case 't': return g_variant_new_uint64 ((guint64) g_rand_int (rand) << 30);
        case 'd': return g_variant_new_double (g_rand_double (rand));
        case 'h': return g_variant_new_handle ((gint32) g_rand_int_range (rand, 0, 10));
        case 'o': return g_variant_new_object_path (g_rand_boolean (rand) ? "/" : "/org/arip/x");
        case 'g': return g_variant_new_signature (g_rand_boolean (rand) ? "" : "a{sv}");
        default:
          {
            g_autofree char *s = random_string (rand);
            return g_variant_new_string (s);
          }
        }
    }
  if (g_variant_type_is_variant (type))
    {
      g_autoptr(GString) child = g_string_new (NULL);

      random_type (rand, child, depth > 0 ? depth - 1 : 0);
      return g_variant_new_variant (random_value (rand, G_VARIANT_TYPE (child->str),
                                                  depth > 0 ? depth - 1 : 0));
    }
  if (g_variant_type_is_maybe (type))
    {
      const GVariantType *element = g_variant_type_element (type);

      return g_variant_new_maybe (element, g_rand_boolean (rand)
                                             ? random_value (rand, element, depth) : NULL);
    }
  if (g_variant_type_is_array (type))
    {
      const GVariantType *element = g_variant_type_element (type);
      GVariantBuilder builder;
      guint n = g_rand_int_range (rand, 0, max_elements);

      g_variant_builder_init (&builder, type);
      for (guint i = 0; i < n; i++)
        g_variant_builder_add_value (&builder, random_value (rand, element, depth));
      return g_variant_builder_end (&builder);
    }
  {
    GVariantBuilder builder;

    g_variant_builder_init (&builder, type);
    for (const GVariantType *member = g_variant_type_first (type); member != NULL;
         member = g_variant_type_next (member))
      g_variant_builder_add_value (&builder, random_value (rand, member, depth));
    return g_variant_builder_end (&builder);
  }
}

static gboolean
glib_says_normal (const char *type,
                  GBytes     *bytes)
{
  g_autoptr(GVariant) value = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type),
                                                                            bytes, FALSE));

  return g_variant_is_normal_form (value);
}

/* @bytes as arip and GLib see them: never opposite answers. */
static void
compare (const char *type,
         GBytes     *bytes,
         guint      *decided)
{
  gsize size, fixed = 0;
  gconstpointer data = g_bytes_get_data (bytes, &size);
  int ours = arip_normal_form_check_full (type, data, size);
  int quick = arip_normal_form_check (type, data, size);
  gboolean theirs = glib_says_normal (type, bytes);

  if (ours == 1 && !theirs)
    {
      g_test_message ("type %s, %" G_GSIZE_FORMAT " bytes: arip says normal, GLib not", type, size);
      for (gsize i = 0; i < size; i++)
        g_test_message ("  byte %" G_GSIZE_FORMAT ": 0x%02x", i, ((const guint8 *) data)[i]);
      g_assert_not_reached ();
    }
  /* GLib reads a fixed-size value of the wrong size as zeros, which it
   * calls normal; arip refuses such a value. */
  {
    g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
    g_autoptr(GVariant) probe = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type),
                                                                              empty, FALSE));
    fixed = g_variant_get_size (probe);
  }
  if (ours == 0 && theirs && !(g_variant_type_is_definite (G_VARIANT_TYPE (type)) && fixed > 0 &&
                               fixed != size))
    {
      g_test_message ("type %s, %" G_GSIZE_FORMAT " bytes: GLib says normal, arip not", type, size);
      for (gsize i = 0; i < size; i++)
        g_test_message ("  byte %" G_GSIZE_FORMAT ": 0x%02x", i, ((const guint8 *) data)[i]);
      g_assert_not_reached ();
    }
  /* The quick check says the same, or leaves it to later. */
  if (quick != -1)
    g_assert_cmpint (quick, ==, ours);
  if (decided != NULL && ours == 1)
    (*decided)++;
}

static void
test_random (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (20261203);
  guint values = 0, decided = 0;

  /* Fewer under valgrind and the sanitizers (which slow GLib's check and
   * every allocation down), where the time multiplier is set. */
  guint rounds = g_getenv ("ARIP_TEST_UNDER_VALGRIND") != NULL ? 500
                 : arip_test_timeout_multiplier () > 1 ? 1000 : 4000;

  for (guint round = 0; round < rounds; round++)
    {
      g_autoptr(GString) type = g_string_new (NULL);
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GBytes) bytes = NULL;
      gsize size;

      max_elements = round % 8 == 0 ? 60 : 5;
      random_type (rand, type, round % 8 == 0 ? 2 : 4);
      value = g_variant_ref_sink (random_value (rand, G_VARIANT_TYPE (type->str), round % 8 == 0 ? 2 : 3));
      bytes = g_variant_get_data_as_bytes (value);
      size = g_bytes_get_size (bytes);
      values++;
      compare (type->str, bytes, &decided);

      /* Damaged copies: a byte changed, the end cut, bytes added. */
      for (guint damage = 0; damage < 12; damage++)
        {
          g_autoptr(GByteArray) copy = g_byte_array_new ();
          g_autoptr(GBytes) damaged = NULL;

          g_byte_array_append (copy, g_bytes_get_data (bytes, NULL), size);
          switch (g_rand_int_range (rand, 0, 4))
            {
            case 0: case 1:
              if (copy->len > 0)
                {
                  guint at = g_rand_int_range (rand, 0, copy->len);
                  static const guint8 choices[] = { 0, 1, 2, 0xff, 'a', 'v', '(', ')', 0x80 };

                  copy->data[at] = choices[g_rand_int_range (rand, 0, G_N_ELEMENTS (choices))];
                }
              break;
            case 2:
              if (copy->len > 0)
                g_byte_array_set_size (copy, g_rand_int_range (rand, 0, copy->len));
              break;
            default:
              {
                guint8 extra = (guint8) g_rand_int_range (rand, 0, 3);

                g_byte_array_append (copy, &extra, 1);
              }
            }
          damaged = g_byte_array_free_to_bytes (g_steal_pointer (&copy));
          compare (type->str, damaged, NULL);
        }
    }
  g_test_message ("%u of %u good values decided without GLib", decided, values);
  /* The empty values it leaves to GLib are few. */
  g_assert_cmpuint (decided, >=, values * 8 / 10);
}

/* The shapes that made GLib slow: large fixed arrays, alone and nested.
 * Each is decided here (1), and corrupting the framing is seen (0). */
static void
test_large_arrays (void)
{
  /* Large enough for the quick check's bound (an "ab" is read byte by
   * byte), small enough for valgrind. */
  gsize n = 2 * 1024 * 1024;
  g_autofree guint8 *blob = g_malloc0 (n);
  GVariant *ay = g_variant_new_from_data (G_VARIANT_TYPE ("ay"), blob, n, TRUE, NULL, NULL);
  g_autoptr(GVariant) nested = g_variant_ref_sink (
    g_variant_new ("(v)", g_variant_new ("(sv)", "bytearray", ay)));
  g_autoptr(GVariant) dict = NULL;
  GVariantBuilder builder;
  g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes (nested);
  g_autoptr(GByteArray) broken = g_byte_array_new ();
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);

  g_assert_cmpint (arip_normal_form_check ("(v)", data, size), ==, 1);

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&builder, "{sv}", "width", g_variant_new_uint32 (640));
  g_variant_builder_add (&builder, "{sv}", "pixels",
                         g_variant_new_from_data (G_VARIANT_TYPE ("a(yyyy)"), blob, n, TRUE,
                                                  NULL, NULL));
  g_variant_builder_add (&builder, "{sv}", "flags",
                         g_variant_new_from_data (G_VARIANT_TYPE ("ab"), blob, n, TRUE,
                                                  NULL, NULL));
  dict = g_variant_ref_sink (g_variant_builder_end (&builder));
  /* The "ab" is read byte by byte: more than the quick check does, and
   * done in full off the main loop. */
  g_assert_cmpint (arip_normal_form_check ("a{sv}", g_variant_get_data (dict),
                                           g_variant_get_size (dict)), ==, -1);
  g_assert_cmpint (arip_normal_form_check_full ("a{sv}", g_variant_get_data (dict),
                                                g_variant_get_size (dict)), ==, 1);

  /* "(v)" is the (sv)'s bytes, a zero byte and "(sv)"; the (sv) ends with
   * the 4-byte offset where its string ends. Made to point past the end,
   * it is not normal. */
  g_byte_array_append (broken, data, size);
  broken->data[size - 6] = 0x7f;
  g_assert_cmpint (arip_normal_form_check ("(v)", broken->data, broken->len), ==, 0);
  /* A boolean that is not 0 or 1, deep in an "ab". */
  blob[n / 2] = 2;
  {
    g_autoptr(GVariant) bools = g_variant_ref_sink (
      g_variant_new_from_data (G_VARIANT_TYPE ("ab"), blob, n, FALSE, NULL, NULL));

    g_assert_cmpint (arip_normal_form_check_full ("ab", g_variant_get_data (bools), n), ==, 0);
    g_assert_false (g_variant_is_normal_form (bools));
  }
}

/* Millions of small elements: the quick check gives up at once rather
 * than hold the main loop (the full one decides). */
static void
test_quick_is_bounded (void)
{
  /* Several times what the quick check looks at. */
  gsize n = 200 * 1000;
  GVariantBuilder builder;
  g_autoptr(GVariant) value = NULL;
  gconstpointer data;
  gint64 start;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("aay"));
  for (gsize i = 0; i < n; i++)
    g_variant_builder_add_value (&builder, g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "x", 1, 1));
  value = g_variant_ref_sink (g_variant_builder_end (&builder));
  data = g_variant_get_data (value);   /* serialized here, not in the timing */
  start = g_get_monotonic_time ();
  g_assert_cmpint (arip_normal_form_check ("aay", data, g_variant_get_size (value)), ==, -1);
  g_test_message ("quick check gave up after %" G_GINT64_FORMAT " us",
                  g_get_monotonic_time () - start);
  g_assert_cmpint (arip_normal_form_check_full ("aay", data, g_variant_get_size (value)), ==, 1);
}

int
main (int argc, char **argv)
{
  arip_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/NormalForm/random", test_random);
  g_test_add_func ("/Arip/NormalForm/large-arrays", test_large_arrays);
  g_test_add_func ("/Arip/NormalForm/quick-is-bounded", test_quick_is_bounded);
  return g_test_run ();
}
