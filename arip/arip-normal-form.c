/* arip-normal-form.c: is a received value in GVariant's normal form?
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A value that comes from another process is in normal form or it is
 * refused: GVariant only promises sane behaviour for trusted data, and a
 * hostile child must not be able to make the parent read garbage.
 * g_variant_is_normal_form() of GLib 2.74 checks an array of fixed-size
 * elements one element at a time, through a function call per element:
 * about a second for a 64 MiB "ay", and as long again for every container
 * such an array is nested in (a dict with an image in it, Python's tagged
 * plain values). This checker follows the same rules (GVariant's
 * serialization format, as the GVariant specification and GLib's
 * serializer define normal form) but checks a fixed-size array whose every
 * byte pattern is valid ("ay", "ai", "a(ii)", ...) in constant time, and
 * the others in one tight loop.
 *
 * It answers 1 (normal), 0 (not normal) or -1 (a case it leaves to GLib:
 * empty values of some types, and nesting deeper than GLib allows; and,
 * for the quick check run as a frame arrives, a value that takes more
 * than a bounded amount of work, which is checked later off the main
 * loop). It
 * never answers 1 where GLib would answer FALSE: tests/test-normal-form.c
 * compares the two on random and mutated values.
 */
#include "config.h"

#include <string.h>

#include "arip-normal-form-private.h"

/* Deeper values are left to GLib, which has its own bound. */
#define MAX_DEPTH 64

/* What the quick check does at most, in values looked at (a string's
 * bytes count a sixteenth each): some hundred microseconds. Beyond, it
 * answers -1 and the caller checks where it blocks nobody. */
#define QUICK_WORK (1 << 15)

typedef struct
{
  gsize work;   /* left; G_MAXSIZE: no bound */
} Budget;

/* Spends @n of @budget; FALSE once it is spent. */
static inline gboolean
spend (Budget *budget,
       gsize   n)
{
  if (budget->work == G_MAXSIZE)
    return TRUE;
  if (budget->work < n)
    {
      budget->work = 0;
      return FALSE;
    }
  budget->work -= n;
  return TRUE;
}

typedef struct
{
  gsize    align;      /* alignment - 1: 0, 1, 3 or 7 */
  gsize    fixed;      /* fixed size; 0 if the size varies */
  gboolean any_bytes;  /* fixed-size, and every byte pattern is normal */
} TypeInfo;

static const char *
type_info (const char *type,
           TypeInfo   *info);

/* The layout of a tuple or dict entry's members (@type points at its '(' or
 * '{'); returns the end of its type string. */
static const char *
container_info (const char *type,
                TypeInfo   *info)
{
  const char *member = type + 1;
  gsize offset = 0;
  gboolean fixed = TRUE;

  info->align = 0;
  info->any_bytes = TRUE;
  while (*member != ')' && *member != '}')
    {
      TypeInfo m;

      member = type_info (member, &m);
      info->align = MAX (info->align, m.align);
      if (m.fixed == 0)
        fixed = FALSE;
      if (fixed)
        {
          if ((offset & m.align) != 0)
            info->any_bytes = FALSE;   /* padding must be zero */
          offset = ((offset + m.align) & ~m.align) + m.fixed;
          info->any_bytes = info->any_bytes && m.any_bytes;
        }
    }

  if (!fixed)
    {
      info->fixed = 0;
      info->any_bytes = FALSE;
    }
  else if (offset == 0)
    {
      /* "()": one zero byte. */
      info->fixed = 1;
      info->any_bytes = FALSE;
    }
  else
    {
      gsize size = (offset + info->align) & ~info->align;

      if (size != offset)
        info->any_bytes = FALSE;
      info->fixed = size;
    }
  return member + 1;
}

/* What the GVariant format says of @type, a valid type string (it need not
 * end after the type); returns the end of the type. */
static const char *
type_info (const char *type,
           TypeInfo   *info)
{
  switch (*type)
    {
    case 'b':
      *info = (TypeInfo) { 0, 1, FALSE };
      return type + 1;
    case 'y':
      *info = (TypeInfo) { 0, 1, TRUE };
      return type + 1;
    case 'n': case 'q':
      *info = (TypeInfo) { 1, 2, TRUE };
      return type + 1;
    case 'i': case 'u': case 'h':
      *info = (TypeInfo) { 3, 4, TRUE };
      return type + 1;
    case 'x': case 't': case 'd':
      *info = (TypeInfo) { 7, 8, TRUE };
      return type + 1;
    case 's': case 'o': case 'g':
      *info = (TypeInfo) { 0, 0, FALSE };
      return type + 1;
    case 'v':
      *info = (TypeInfo) { 7, 0, FALSE };
      return type + 1;
    case 'a': case 'm':
      {
        const char *end = type_info (type + 1, info);

        info->fixed = 0;
        info->any_bytes = FALSE;
        return end;
      }
    case '(': case '{':
      return container_info (type, info);
    default:
      g_return_val_if_reached (type + 1);
    }
}

/* Whether @type (a valid type string) nests more than @limit deep, each
 * container a level (GLib bounds the depth of a value, type and variants
 * within it together; beyond our own, smaller, bound GLib decides). */
static gboolean
type_deeper_than (const char *type,
                  guint       limit)
{
  guint prefixes[MAX_DEPTH + 2];   /* arrays and maybes before each open tuple */
  guint open = 0, enclosing = 0, pending = 0;

  for (const char *c = type; *c != '\0'; c++)
    {
      switch (*c)
        {
        case 'a': case 'm':
          pending++;
          break;
        case '(': case '{':
          if (enclosing + pending + 1 > limit || open > MAX_DEPTH)
            return TRUE;
          prefixes[open++] = pending;
          enclosing += pending + 1;
          pending = 0;
          break;
        case ')': case '}':
          if (open == 0)
            return TRUE;   /* not a valid type: leave it to GLib */
          enclosing -= prefixes[--open] + 1;
          pending = 0;
          break;
        default:
          if (enclosing + pending + 1 > limit)
            return TRUE;
          pending = 0;
          break;
        }
      if (enclosing + pending > limit)
        return TRUE;
    }
  return FALSE;
}

static gsize
offset_size_for (gsize size)
{
  if (size > G_MAXUINT32)
    return 8;
  if (size > G_MAXUINT16)
    return 4;
  if (size > G_MAXUINT8)
    return 2;
  return size > 0 ? 1 : 0;
}

/* The size a body of @body_size bytes and @n offsets take in normal form:
 * offsets as small as the total allows. */
static gsize
total_size (gsize body_size,
            gsize n)
{
  if (body_size + n <= G_MAXUINT8)
    return body_size + n;
  if (body_size + 2 * n <= G_MAXUINT16)
    return body_size + 2 * n;
  if (body_size + 4 * n <= G_MAXUINT32)
    return body_size + 4 * n;
  return body_size + 8 * n;
}

static gsize
read_offset (const guint8 *data,
             gsize         n)
{
  guint64 value = 0;

  for (gsize i = 0; i < n; i++)
    value |= (guint64) data[i] << (8 * i);
  return (gsize) value;
}

/* Moves *@offset on to the next multiple of @align + 1 over padding, which
 * must be zero bytes before @end; FALSE if it is not. */
static gboolean
skip_padding (const guint8 *data,
              gsize        *offset,
              gsize         align,
              gsize         end)
{
  while ((*offset & align) != 0)
    {
      if (*offset >= end || data[*offset] != '\0')
        return FALSE;
      (*offset)++;
    }
  return TRUE;
}

static int check (Budget *budget, const char *type, const guint8 *data, gsize size,
                  guint depth);

/* Combines answers: 0 wins, then -1. */
#define COMBINE(answer, part) G_STMT_START {   \
    int part_ = (part);                         \
    if (part_ == 0)                             \
      return 0;                                 \
    if (part_ < 0)                              \
      (answer) = -1;                            \
  } G_STMT_END

static int
check_string (Budget       *budget,
              char          kind,
              const guint8 *data,
              gsize         size)
{
  if (!spend (budget, size / 16))
    return -1;
  if (size == 0 || data[size - 1] != '\0' || memchr (data, '\0', size - 1) != NULL)
    return 0;
  switch (kind)
    {
    case 's':
      return g_utf8_validate ((const char *) data, (gssize) size - 1, NULL);
    case 'o':
      return g_variant_is_object_path ((const char *) data);
    default:
      return g_variant_is_signature ((const char *) data);
    }
}

static int
check_variant (Budget       *budget,
               const guint8 *data,
               gsize         size,
               guint         depth)
{
  gsize zero = size;
  const char *child_type, *child_end, *scanned = NULL;
  g_autofree char *type = NULL;

  if (size == 0)
    return -1;   /* (and data may be NULL) */
  child_end = (const char *) data + size;
  while (zero > 0 && data[zero - 1] != '\0')
    zero--;
  if (zero == 0)
    return 0;
  child_type = (const char *) data + zero;
  if (child_type == child_end ||
      !g_variant_type_string_scan (child_type, child_end, &scanned) || scanned != child_end ||
      !g_variant_type_is_definite ((const GVariantType *) child_type))
    return 0;
  /* The type as a string of its own: it ends the value, with no nul. */
  type = g_strndup (child_type, child_end - child_type);
  if (type_deeper_than (type, MAX_DEPTH - MIN (depth, MAX_DEPTH)))
    return -1;   /* GLib bounds variants and their types' depth together */
  return check (budget, type, data, zero - 1, depth + 1);
}

static int
check_array (Budget       *budget,
             const char   *element,
             const guint8 *data,
             gsize         size,
             guint         depth)
{
  TypeInfo info;
  gsize offset_size, offsets_start, n, offset = 0;
  int answer = 1;

  if (size == 0)
    return 1;
  type_info (element, &info);

  if (info.fixed > 0)
    {
      if (size % info.fixed != 0)
        return 0;
      if (info.any_bytes)
        return 1;
      if (*element == 'b')
        {
          if (!spend (budget, size / 16))
            return -1;
          for (gsize i = 0; i < size; i++)
            if (data[i] > 1)
              return 0;
          return 1;
        }
      for (gsize i = 0; i < size; i += info.fixed)
        {
          COMBINE (answer, check (budget, element, data + i, info.fixed, depth + 1));
          if (budget->work == 0)
            return -1;
        }
      return answer;
    }

  offset_size = offset_size_for (size);
  offsets_start = read_offset (data + size - offset_size, offset_size);
  if (offsets_start > size - offset_size || (size - offsets_start) % offset_size != 0)
    return 0;
  n = (size - offsets_start) / offset_size;
  if (total_size (offsets_start, n) != size)
    return 0;   /* smaller offsets would have done */
  for (gsize i = 0; i < n; i++)
    {
      gsize end = read_offset (data + offsets_start + i * offset_size, offset_size);

      if (end < offset || end > offsets_start)
        return 0;
      if (!skip_padding (data, &offset, info.align, end))
        return 0;
      COMBINE (answer, check (budget, element, data + offset, end - offset, depth + 1));
      if (budget->work == 0)
        return -1;
      offset = end;
    }
  return offset == offsets_start ? answer : 0;
}

static int
check_maybe (Budget       *budget,
             const char   *element,
             const guint8 *data,
             gsize         size,
             guint         depth)
{
  TypeInfo info;

  if (size == 0)
    return 1;   /* Nothing */
  type_info (element, &info);
  if (info.fixed > 0)
    return size == info.fixed ? check (budget, element, data, size, depth + 1) : 0;
  if (data[size - 1] != '\0')
    return 0;
  return check (budget, element, data, size - 1, depth + 1);
}

static int
check_tuple (Budget       *budget,
             const char   *type,
             const guint8 *data,
             gsize         size,
             guint         depth)
{
  TypeInfo info;
  const char *member = type + 1;
  gsize offset_size = offset_size_for (size), offset = 0, offset_ptr = size;
  guint members = 0, offsets = 0;
  int answer = 1;

  type_info (type, &info);
  if (info.fixed > 0 && size != info.fixed)
    return 0;
  if (size == 0)
    return -1;
  if (info.any_bytes)
    return 1;

  while (*member != ')' && *member != '}')
    {
      TypeInfo m;
      const char *member_end = type_info (member, &m);
      gsize end;

      members++;
      if (!skip_padding (data, &offset, m.align, size))
        return 0;
      if (m.fixed > 0)
        end = offset + m.fixed;
      else if (*member_end == ')' || *member_end == '}')
        end = offset_ptr;           /* the last member ends where the offsets begin */
      else
        {
          if (offset_ptr < offset_size)
            return 0;
          offset_ptr -= offset_size;
          offsets++;
          if (offset_ptr < offset)
            return 0;
          end = read_offset (data + offset_ptr, offset_size);
        }
      if (end < offset || end > offset_ptr)
        return 0;
      COMBINE (answer, check (budget, member, data + offset, end - offset, depth + 1));
      if (budget->work == 0)
        return -1;
      offset = end;
      member = member_end;
    }

  if (info.fixed > 0)
    {
      if (members == 0)
        return data[0] == '\0' ? answer : 0;
      if (!skip_padding (data, &offset, info.align, size))
        return 0;
      return offset == size ? answer : 0;
    }
  if (offsets > 0 && total_size (size - offsets * offset_size, offsets) != size)
    return 0;   /* smaller offsets would have done */
  return offset_ptr == offset ? answer : 0;
}

static int
check (Budget       *budget,
       const char   *type,
       const guint8 *data,
       gsize         size,
       guint         depth)
{
  TypeInfo info;

  if (depth > MAX_DEPTH || !spend (budget, 1))
    return -1;
  switch (*type)
    {
    case 'b':
      return size == 1 && data[0] < 2;
    case 's': case 'o': case 'g':
      return check_string (budget, *type, data, size);
    case 'v':
      return check_variant (budget, data, size, depth);
    case 'a':
      return check_array (budget, type + 1, data, size, depth);
    case 'm':
      return check_maybe (budget, type + 1, data, size, depth);
    case '(': case '{':
      return check_tuple (budget, type, data, size, depth);
    default:
      type_info (type, &info);
      return size == info.fixed;
    }
}

static int
check_with (gsize         work,
            const char   *type,
            gconstpointer data,
            gsize         size)
{
  Budget budget = { work };

  g_return_val_if_fail (type != NULL, -1);
  g_return_val_if_fail (data != NULL || size == 0, -1);

  if (type_deeper_than (type, MAX_DEPTH))
    return -1;
  return check (&budget, type, data, size, 0);
}

int
arip_normal_form_check (const char   *type,
                        gconstpointer data,
                        gsize         size)
{
  return check_with (QUICK_WORK, type, data, size);
}

int
arip_normal_form_check_full (const char   *type,
                             gconstpointer data,
                             gsize         size)
{
  return check_with (G_MAXSIZE, type, data, size);
}
