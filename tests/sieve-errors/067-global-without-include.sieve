require "variables";
global "x";
