/* jsonmem.h - jansson's allocations through lode's, with a count of the
 * ones that failed.
 *
 * jansson reports running out of memory while parsing as a parse error
 * (json_loadb returns NULL, often with no error text and no
 * json_error_out_of_memory code), so a caller cannot tell a client's bad
 * JSON (400) from the server's own failure (500).  jsonmem_install()
 * makes jansson allocate through malloc here and counts the failures per
 * thread: a parse that returns NULL while the count moved ran out of
 * memory.  A failed allocation is first tried again after giving back
 * a reserve (jsonmem.c says why: jansson's lexer does not survive one).
 * Going through lode's malloc also puts jansson under the fault test's
 * allocation hook (tests/test_faults.c).
 */
#ifndef LODE_JSONMEM_H
#define LODE_JSONMEM_H

/* Route jansson's allocations through jsonmem (once, before any JSON is
 * made: memory jansson allocated before must be freed by the same free,
 * which it is, as both use the C library's). */
void jsonmem_install(void);

/* jansson allocations that failed on this thread so far.  Compare the
 * value before and after a call: a change means it ran out of memory. */
unsigned long jsonmem_failures(void);

#endif
