# crnn-plot: SVG checked as XML (both loss curves, the chars/s panel), PNG through gnuplot
# (SKIP, exit 77, when gnuplot is not installed), a real crnn-train run's metrics, bad input;
# the same for a scaling benchmark's results (efficiency and step times against log2 ranks);
# -x time and -x epoch (x_axis).
foreach(case svg png real_run bad_input scaling_svg scaling_png scaling_bad_input x_axis)
  add_test(NAME plot_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_plot.py ${case})
  set_tests_properties(plot_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300 SKIP_RETURN_CODE 77)
endforeach()
