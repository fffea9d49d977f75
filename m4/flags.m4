dnl CC_CHECK_FLAGS_APPEND(VARIABLE, FLAGS-VARIABLE, FLAGS)
dnl Appends to VARIABLE each flag of FLAGS that the C compiler accepts.
AC_DEFUN([CC_CHECK_FLAGS_APPEND], [
  for flag in $3; do
    AC_MSG_CHECKING([whether $CC accepts $flag])
    cc_check_save_CFLAGS="$CFLAGS"
    CFLAGS="$CFLAGS -Werror $flag"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[]], [[]])],
      [AC_MSG_RESULT([yes]); $1="$$1 $flag"],
      [AC_MSG_RESULT([no])])
    CFLAGS="$cc_check_save_CFLAGS"
  done
])
