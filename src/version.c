/*-------------------------------------------------------------------------
 *
 * src/version.c
 *	  The version of the loaded shared library, so clinical.version() can
 *	  show when the installed SQL objects and the library disagree (after
 *	  an upgrade of the package without ALTER EXTENSION ... UPDATE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "clinical.h"

PG_FUNCTION_INFO_V1(clinical_library_version);

/* clinical.library_version() RETURNS text */
Datum
clinical_library_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(CLINICAL_VERSION));
}
