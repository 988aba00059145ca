require "vacation";
vacation :handle ;
